# Named (server-side) cursors through Gatehouse, as drivers send them: psycopg 3's
# ServerCursor (DECLARE over the extended protocol, Describe of the cursor's portal, FETCH
# FORWARD n) and SQLAlchemy's stream_results on psycopg2 (DECLARE "c_..." CURSOR WITHOUT
# HOLD FOR ..., then FETCH FORWARD n FROM "c_..."). Run by drivers-governed.test.ts as
# `/usr/bin/python3 named_cursors.py <port> <user> <password>`. Prints one JSON object.
import json
import sys
from urllib.parse import quote

import psycopg
from sqlalchemy import create_engine, text

port, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}


def sqlstate(e):
    return getattr(e, "sqlstate", None) or getattr(getattr(e, "orig", None), "pgcode", None) or repr(e)


with psycopg.connect(host="127.0.0.1", port=port, user=user, password=password, dbname="warehouse") as conn:
    try:
        with conn.cursor(name="psycopg_named") as cur:
            cur.itersize = 7
            cur.execute("SELECT region FROM orders WHERE amount > %s ORDER BY id", (0,))
            out["psycopg3"] = sorted({r[0] for r in cur})
    except Exception as e:
        out["psycopg3"] = sqlstate(e)
    conn.rollback()
    try:
        with conn.cursor(name="psycopg_secret") as cur:
            cur.execute("SELECT name FROM employees")
            cur.fetchall()
            out["psycopg3_employees"] = "allowed"
    except Exception as e:
        out["psycopg3_employees"] = sqlstate(e)

url = f"postgresql+psycopg2://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{port}/warehouse"
engine = create_engine(url)
try:
    with engine.connect() as c:
        result = c.execution_options(stream_results=True, max_row_buffer=5).execute(text("SELECT region FROM customers"))
        out["sqlalchemy_stream"] = sorted({r[0] for r in result})
finally:
    engine.dispose()
print(json.dumps(out))
