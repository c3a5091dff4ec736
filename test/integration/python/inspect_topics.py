# SQLAlchemy's inspector (psycopg2, the simple query protocol) through Gatehouse: run by
# bi-catalog.test.ts as `/usr/bin/python3 inspect_topics.py <port> <user> <password>`
# (Debian's python3-sqlalchemy and python3-psycopg2). Prints one JSON object.
import json
import sys
from urllib.parse import quote

from sqlalchemy import create_engine, inspect, text

port, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
url = f"postgresql+psycopg2://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{port}/warehouse"
engine = create_engine(url)
out = {"sqlalchemy": __import__("sqlalchemy").__version__}
try:
    insp = inspect(engine)
    out["tables"] = sorted(insp.get_table_names())
    out["columns"] = {
        t: [{"name": c["name"], "type": str(c["type"])} for c in insp.get_columns(t)] for t in out["tables"]
    }
    out["has_employees"] = insp.has_table("employees")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT region, count(*) FROM orders GROUP BY 1")).all()
        out["regions"] = {r[0]: r[1] for r in rows}
        try:
            conn.execute(text("SELECT * FROM employees")).all()
            out["employees"] = "allowed"
        except Exception as e:  # the DBAPI error carries the SQLSTATE
            out["employees"] = getattr(getattr(e, "orig", None), "pgcode", None) or repr(e)
finally:
    engine.dispose()
print(json.dumps(out))
