# psycopg2 through Gatehouse in front of a mysql connection (test/integration/mysql-governed.test.ts):
#   /usr/bin/python3 mysql_governed.py <port> <user> <password> <query> <with-param> <refused>
# psycopg2 opens a transaction (BEGIN) before the first statement and binds parameters
# client side (%s). Prints one JSON object: each case's rows or its SQLSTATE.
import json
import sys

import psycopg2

port, user, password, query, with_param, refused = sys.argv[1:7]
out = {}


def connect():
    return psycopg2.connect(host="127.0.0.1", port=port, dbname="warehouse", user=user, password=password, connect_timeout=10)


def case(name, sql, params=None):
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            out[name] = {"rows": [[str(v) for v in r] for r in cur.fetchall()]}
        conn.commit()
    except psycopg2.Error as e:
        out[name] = {"sqlstate": e.pgcode, "error": str(e).strip()}
    finally:
        conn.close()


case("query", query)
case("param", with_param, (1000,))
case("refused", refused)
case("isolation", "SHOW transaction isolation level")
print(json.dumps(out))
