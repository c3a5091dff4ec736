# psycopg2 (simple query protocol, client-side parameters), SQLAlchemy 1.4 over it and
# pandas.read_sql through Gatehouse: `/usr/bin/python3 psycopg2_matrix.py <port> <user> <password>`.
import io
from urllib.parse import quote

import pandas as pd
import psycopg2
from sqlalchemy import create_engine, inspect, text

from matrix_case import args, case, done

port, user, password, _ = args()


def connect():
    return psycopg2.connect(host="127.0.0.1", port=port, dbname="warehouse", user=user, password=password, connect_timeout=10)


def one(sql, params=None):
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


@case("connect")
def _():
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_database(), current_user")
            db, who = cur.fetchone()
        return {"database": db, "user": who, "server_version": conn.server_version}
    finally:
        conn.close()


@case("governed")
def _():
    return {
        "regions": [list(r) for r in one("SELECT region, count(*) FROM orders GROUP BY 1 ORDER BY 1")],
        "first_ids": [r[0] for r in one("SELECT id FROM orders ORDER BY id LIMIT 3")],
    }


@case("refused")
def _():
    # bob: employees is not a topic; carol: writes are refused (read-only querier).
    sql = "SELECT * FROM employees" if user.startswith("bob") else "INSERT INTO employees VALUES (999, 'x', 'x@x', 1, '000-00-0000')"
    try:
        one(sql)
        return "allowed"
    except psycopg2.Error as e:
        return e.pgcode


@case("params")
def _():
    return one("SELECT count(*) FROM orders WHERE id <= %s AND status = %s", (1000, "paid"))[0][0]


@case("prepare_execute")
def _():
    # psycopg2 has no driver-side prepared statements: SQL PREPARE / EXECUTE / DEALLOCATE.
    conn = connect()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("PREPARE by_id(int) AS SELECT count(*) FROM orders WHERE id <= $1")
            cur.execute("EXECUTE by_id(100)")
            a = cur.fetchone()[0]
            cur.execute("EXECUTE by_id(2000)")
            b = cur.fetchone()[0]
            cur.execute("DEALLOCATE by_id")
            try:
                cur.execute("EXECUTE by_id(1)")
                gone = "still there"
            except psycopg2.Error as e:
                gone = e.pgcode
        return [a, b, gone]
    finally:
        conn.close()


@case("named_cursor")
def _():
    # A named cursor is DECLARE ... CURSOR WITHOUT HOLD + FETCH FORWARD itersize inside a transaction.
    conn = connect()
    try:
        with conn.cursor(name="orders_cur") as cur:
            cur.itersize = 500
            cur.execute("SELECT id FROM orders ORDER BY id")
            ids = [r[0] for r in cur]
        conn.commit()
        return {"count": len(ids), "first": ids[:3], "last": ids[-1], "sum": sum(ids)}
    finally:
        conn.close()


@case("copy_csv")
def _():
    conn = connect()
    try:
        buf = io.StringIO()
        with conn.cursor() as cur:
            cur.copy_expert("COPY (SELECT id, region FROM orders ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)", buf)
        lines = buf.getvalue().splitlines()
        return {"lines": len(lines), "head": lines[:3]}
    finally:
        conn.close()


@case("copy_binary")
def _():
    conn = connect()
    try:
        buf = io.BytesIO()
        with conn.cursor() as cur:
            cur.copy_expert("COPY (SELECT id FROM orders ORDER BY id LIMIT 2) TO STDOUT WITH (FORMAT binary)", buf)
        data = buf.getvalue()
        return {"signature": data[:11].hex(), "bytes": len(data)}
    finally:
        conn.close()


def engine():
    return create_engine(f"postgresql+psycopg2://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{port}/warehouse")


@case("sqlalchemy_inspect")
def _():
    eng = engine()
    try:
        insp = inspect(eng)
        return {
            "tables": sorted(insp.get_table_names()),
            "orders_columns": [[c["name"], str(c["type"])] for c in insp.get_columns("orders")],
            "has_employees": insp.has_table("employees"),
        }
    finally:
        eng.dispose()


@case("sqlalchemy_params")
def _():
    eng = engine()
    try:
        with eng.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM orders WHERE id <= :max_id AND status = :status"), {"max_id": 1000, "status": "paid"}).scalar()
    finally:
        eng.dispose()


@case("pandas_read_sql")
def _():
    eng = engine()
    try:
        df = pd.read_sql(text("SELECT region, count(*) AS n FROM orders WHERE id <= :max_id GROUP BY 1 ORDER BY 1"), eng, params={"max_id": 2000})
        return {"columns": list(df.columns), "rows": df.values.tolist()}
    finally:
        eng.dispose()


@case("pandas_read_sql_table")
def _():
    # read_sql_table reflects the table first (SQLAlchemy's catalog queries), then selects it.
    eng = engine()
    try:
        df = pd.read_sql_table("customers", eng)
        return {"columns": list(df.columns), "rows": len(df), "regions": sorted(df["region"].unique().tolist())}
    finally:
        eng.dispose()


done()
