# psycopg 3 (server-side parameters over the extended protocol; its prepared-statement cache;
# named server-side cursors; COPY in text and binary) through Gatehouse:
# `/usr/bin/python3 psycopg3_matrix.py <port> <user> <password>`.
import psycopg

from matrix_case import args, case, done

port, user, password, _ = args()


def connect(**kw):
    return psycopg.connect(host="127.0.0.1", port=port, dbname="warehouse", user=user, password=password, connect_timeout=10, **kw)


@case("connect")
def _():
    with connect() as conn:
        db, who = conn.execute("SELECT current_database(), current_user").fetchone()
        return {"database": db, "user": who, "server_version": conn.info.server_version}


@case("governed")
def _():
    with connect() as conn:
        return {
            "regions": [list(r) for r in conn.execute("SELECT region, count(*) FROM orders GROUP BY 1 ORDER BY 1")],
            "first_ids": [r[0] for r in conn.execute("SELECT id FROM orders ORDER BY id LIMIT 3")],
        }


@case("refused")
def _():
    sql = "SELECT * FROM employees" if user.startswith("bob") else "INSERT INTO employees VALUES (999, 'x', 'x@x', 1, '000-00-0000')"
    with connect() as conn:
        try:
            conn.execute(sql)
            return "allowed"
        except psycopg.Error as e:
            return e.sqlstate


@case("params")
def _():
    with connect() as conn:
        return conn.execute("SELECT count(*) FROM orders WHERE id <= %s AND status = %s", (1000, "paid")).fetchone()[0]


@case("prepared_cache")
def _():
    # prepare_threshold=0: every statement is prepared (Parse of _pg3_N) on first use; prepared_max=2:
    # the third distinct statement evicts the oldest, which psycopg DEALLOCATEs by name.
    with connect(prepare_threshold=0, autocommit=True) as conn:
        conn.prepared_max = 2
        out = []
        for limit in (100, 1000, 2000, 100, 1000, 2000):
            out.append(conn.execute("SELECT count(*) FROM orders WHERE id <= %s", (limit,)).fetchone()[0])
            out.append(conn.execute("SELECT count(*) FROM customers WHERE id <= %s", (limit,)).fetchone()[0])
            out.append(conn.execute("SELECT count(*) FROM orders WHERE id <= %s AND status = 'paid'", (limit,)).fetchone()[0])
        return out


@case("prepared_explicit")
def _():
    # prepare=True: prepared at once, then bound again by name.
    with connect(autocommit=True) as conn:
        cur = conn.cursor()
        a = cur.execute("SELECT count(*) FROM orders WHERE id <= %s", (100,), prepare=True).fetchone()[0]
        b = cur.execute("SELECT count(*) FROM orders WHERE id <= %s", (2000,), prepare=True).fetchone()[0]
        return [a, b]


@case("server_cursor")
def _():
    with connect() as conn:
        with conn.cursor(name="orders_cur") as cur:
            cur.itersize = 500
            cur.execute("SELECT id FROM orders WHERE id > %s ORDER BY id", (0,))
            head = [r[0] for r in cur.fetchmany(3)]
            rest = [r[0] for r in cur]
        return {"head": head, "rest": len(rest), "last": rest[-1]}


@case("server_cursor_iter")
def _():
    with connect() as conn:
        with conn.cursor(name="orders_iter") as cur:
            cur.itersize = 500
            cur.execute("SELECT id FROM orders ORDER BY id")
            ids = [r[0] for r in cur]
        return {"count": len(ids), "first": ids[:3], "last": ids[-1], "sum": sum(ids)}


@case("stream")
def _():
    # Cursor.stream: libpq's single-row mode, one Execute read row by row.
    with connect() as conn:
        ids = [r[0] for r in conn.cursor().stream("SELECT id FROM orders WHERE id <= %s ORDER BY id", (2000,))]
        return {"count": len(ids), "first": ids[:3]}


@case("copy_text")
def _():
    with connect() as conn:
        rows = []
        with conn.cursor().copy("COPY (SELECT id, region FROM orders ORDER BY id) TO STDOUT") as copy:
            for row in copy.rows():
                rows.append(list(row))
        return {"count": len(rows), "head": rows[:2]}


@case("copy_binary")
def _():
    with connect() as conn:
        rows = []
        with conn.cursor().copy("COPY (SELECT id, amount FROM orders ORDER BY id LIMIT 3) TO STDOUT (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "numeric"])
            for row in copy.rows():
                rows.append([row[0], str(row[1])])
        return rows


@case("catalog")
def _():
    with connect() as conn:
        tables = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1", ("public",))]
        cols = [list(r) for r in conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position", ("customers",))]
        numeric = psycopg.types.TypeInfo.fetch(conn, "numeric")
        return {"tables": tables, "customers_columns": cols, "numeric_oid": numeric.oid if numeric else None}


done()
