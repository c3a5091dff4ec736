-- globex's demo warehouse: its own, different data (DESIGN section 5).
CREATE TABLE orders (
  id int PRIMARY KEY,
  region text NOT NULL,
  amount numeric(12,2) NOT NULL,
  status text NOT NULL,
  ordered_at timestamptz NOT NULL
);
CREATE TABLE shipments (
  id int PRIMARY KEY,
  order_id int NOT NULL REFERENCES orders(id),
  carrier text NOT NULL,
  shipped_at timestamptz NOT NULL
);

INSERT INTO orders
SELECT g,
       (ARRAY['NORTH','SOUTH'])[1 + g % 2],
       round(((g * 104729) % 50000) / 100.0 + 1, 2)::numeric(12,2),
       (ARRAY['paid','open'])[1 + g % 2],
       timestamptz '2024-06-01 00:00:00+00' + (g || ' hours')::interval * 5
FROM generate_series(1, 1200) g;

INSERT INTO shipments
SELECT g, g, (ARRAY['DHL','UPS','FedEx'])[1 + g % 3], timestamptz '2024-06-02 00:00:00+00' + (g || ' hours')::interval * 5
FROM generate_series(1, 900) g;

ANALYZE;
