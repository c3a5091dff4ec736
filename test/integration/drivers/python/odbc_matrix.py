# psqlODBC (Debian's odbc-postgresql, "PostgreSQL Unicode" in /etc/odbcinst.ini) through pyodbc and
# unixODBC, DSN-less, as Power BI / Excel / Tableau on Windows connect:
# `/usr/bin/python3 odbc_matrix.py <port> <user> <password> <variant>`, variant one of
# ssp1 (UseServerSidePrepare=1, the default), ssp0 (UseServerSidePrepare=0), declare (UseDeclareFetch=1).
import os

import pyodbc

from matrix_case import args, case, done

port, user, password, variant = args()
VARIANTS = {
    "ssp1": "UseServerSidePrepare=1;UseDeclareFetch=0",
    "ssp0": "UseServerSidePrepare=0;UseDeclareFetch=0",
    "declare": "UseServerSidePrepare=1;UseDeclareFetch=1;Fetch=100",
}
DATABASE = os.environ.get("MATRIX_DATABASE", "warehouse")
CONN_STR = (
    f"Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port={port};Database={DATABASE};"
    f"Uid={user};Pwd={{{password}}};SSLmode=disable;{VARIANTS[variant]}"
)


def connect():
    return pyodbc.connect(CONN_STR, timeout=10, autocommit=True)


@case("connect")
def _():
    conn = connect()
    try:
        db, who = conn.cursor().execute("SELECT current_database(), current_user").fetchone()
        return {"database": db, "user": who, "dbms": conn.getinfo(pyodbc.SQL_DBMS_NAME)}
    finally:
        conn.close()


@case("governed")
def _():
    conn = connect()
    try:
        cur = conn.cursor()
        regions = [[r[0], int(r[1])] for r in cur.execute("SELECT region, count(*) FROM orders GROUP BY 1 ORDER BY 1").fetchall()]
        ids = [r[0] for r in cur.execute("SELECT id FROM orders ORDER BY id LIMIT 3").fetchall()]
        return {"regions": regions, "first_ids": ids}
    finally:
        conn.close()


@case("refused")
def _():
    sql = "SELECT * FROM employees" if user.startswith("bob") else "INSERT INTO employees VALUES (999, 'x', 'x@x', 1, '000-00-0000')"
    conn = connect()
    try:
        try:
            conn.cursor().execute(sql).fetchall()
            return "allowed"
        except pyodbc.Error as e:
            return e.args[0]
    finally:
        conn.close()


@case("params")
def _():
    conn = connect()
    try:
        return int(conn.cursor().execute("SELECT count(*) FROM orders WHERE id <= ? AND status = ?", 1000, "paid").fetchone()[0])
    finally:
        conn.close()


@case("prepared_reuse")
def _():
    # The same text on one cursor is prepared once and executed again (psqlODBC names it _PLAN0x...);
    # switching texts frees the previous plan (psqlODBC DEALLOCATEs it), in and out of a transaction.
    conn = connect()
    try:
        cur = conn.cursor()
        out = []
        for limit in (100, 1000, 2000):
            out.append(int(cur.execute("SELECT count(*) FROM orders WHERE id <= ?", limit).fetchone()[0]))
            out.append(int(cur.execute("SELECT count(*) FROM orders WHERE id <= ?", limit).fetchone()[0]))
            out.append(int(cur.execute("SELECT count(*) FROM customers WHERE id <= ?", limit).fetchone()[0]))
        conn.autocommit = False
        out.append(int(cur.execute("SELECT count(*) FROM orders WHERE id <= ?", 100).fetchone()[0]))
        out.append(int(cur.execute("SELECT count(*) FROM customers WHERE id <= ?", 100).fetchone()[0]))
        conn.commit()
        cur.close()
        return out
    finally:
        conn.close()


@case("fetch_all_rows")
def _():
    # With UseDeclareFetch=1 this is DECLARE + FETCH 100 in a transaction psqlODBC opens itself.
    conn = connect()
    try:
        cur = conn.cursor()
        cur.execute("SELECT id FROM orders ORDER BY id")
        ids = []
        while True:
            batch = cur.fetchmany(250)
            if not batch:
                break
            ids.extend(r[0] for r in batch)
        return {"count": len(ids), "first": ids[:3], "last": ids[-1], "sum": sum(ids)}
    finally:
        conn.close()


@case("catalog_tables")
def _():
    conn = connect()
    try:
        rows = conn.cursor().tables(schema="public", tableType="TABLE").fetchall()
        return sorted(r.table_name for r in rows)
    finally:
        conn.close()


@case("catalog_columns")
def _():
    conn = connect()
    try:
        rows = conn.cursor().columns(table="customers", schema="public").fetchall()
        return [[r.column_name, r.type_name] for r in rows]
    finally:
        conn.close()


done()
