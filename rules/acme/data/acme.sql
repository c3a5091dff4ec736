-- acme's demo warehouse: deterministic sample data (DESIGN section 5).
CREATE TABLE customers (
  id int PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL,
  region text NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE TABLE orders (
  id int PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers(id),
  region text NOT NULL,
  amount numeric(12,2) NOT NULL,
  status text NOT NULL,
  ordered_at timestamptz NOT NULL
);
CREATE INDEX orders_region_idx ON orders(region);
CREATE INDEX orders_customer_idx ON orders(customer_id);
CREATE TABLE employees (
  id int PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL,
  salary numeric(10,2) NOT NULL,
  ssn text NOT NULL
);

INSERT INTO customers
SELECT g,
       'Customer ' || g,
       'customer' || g || '@example.com',
       (ARRAY['EMEA','AMER','APAC'])[1 + g % 3],
       timestamptz '2024-01-01 00:00:00+00' + (g || ' hours')::interval * 7
FROM generate_series(1, 300) g;

INSERT INTO orders
SELECT g,
       c.id,
       c.region,
       round(((g * 7919) % 100000) / 100.0 + 5, 2)::numeric(12,2),
       (ARRAY['paid','open','refunded','shipped'])[1 + g % 4],
       timestamptz '2024-01-01 00:00:00+00' + (g || ' hours')::interval * 3
FROM generate_series(1, 5000) g
JOIN customers c ON c.id = 1 + (g * 37) % 300;

INSERT INTO employees
SELECT g,
       'Employee ' || g,
       'employee' || g || '@acme.example',
       40000 + (g * 1237) % 60000,
       lpad((100 + g)::text, 3, '0') || '-' || lpad((g % 90 + 10)::text, 2, '0') || '-' || lpad((g * 97 % 10000)::text, 4, '0')
FROM generate_series(1, 50) g;

ANALYZE;
