# asyncpg (extended protocol only: Parse/Describe then Flush, binary results, its statement
# cache, portals read with row-limited Execute) through Gatehouse:
# `/usr/bin/python3 asyncpg_matrix.py <port> <user> <password>`.
import asyncio
import io
import os

import asyncpg

from matrix_case import args, done, record_error, results

port, user, password, _ = args()


async def connect(**kw):
    return await asyncpg.connect(host="127.0.0.1", port=int(port), database=os.environ.get("MATRIX_DATABASE", "warehouse"), user=user, password=password, timeout=10, **kw)


async def run_case(name, fn):
    try:
        results[name] = {"ok": True, "value": await asyncio.wait_for(fn(), 30)}
    except BaseException as e:  # noqa: BLE001
        record_error(name, e)


async def c_connect():
    conn = await connect()
    try:
        row = await conn.fetchrow("SELECT current_database() AS db, current_user AS who")
        v = conn.get_server_version()
        return {"database": row["db"], "user": row["who"], "server_version": v.major}
    finally:
        await conn.close()


async def c_governed():
    conn = await connect()
    try:
        return {
            "regions": [[r["region"], r["n"]] for r in await conn.fetch("SELECT region, count(*) AS n FROM orders GROUP BY 1 ORDER BY 1")],
            "first_ids": [r["id"] for r in await conn.fetch("SELECT id FROM orders ORDER BY id LIMIT 3")],
        }
    finally:
        await conn.close()


async def c_refused():
    sql = "SELECT * FROM employees" if user.startswith("bob") else "INSERT INTO employees VALUES (999, 'x', 'x@x', 1, '000-00-0000')"
    conn = await connect()
    try:
        try:
            await conn.fetch(sql)
            return "allowed"
        except asyncpg.PostgresError as e:
            return e.sqlstate
    finally:
        await conn.close()


async def c_params():
    conn = await connect()
    try:
        return await conn.fetchval("SELECT count(*) FROM orders WHERE id <= $1 AND status = $2", 1000, "paid")
    finally:
        await conn.close()


async def c_prepared():
    conn = await connect()
    try:
        stmt = await conn.prepare("SELECT id, amount, ordered_at FROM orders WHERE id <= $1 ORDER BY id")
        a = await stmt.fetch(100)
        b = await stmt.fetchval(2000)
        return {
            "params": [t.name for t in stmt.get_parameters()],
            "attributes": [[a.name, a.type.name] for a in stmt.get_attributes()],
            "rows": len(a),
            "first": [a[0]["id"], str(a[0]["amount"]), a[0]["ordered_at"].isoformat()],
            "fetchval": b,
        }
    finally:
        await conn.close()


async def c_statement_cache():
    # statement_cache_size=2: the third distinct query evicts the oldest, which asyncpg Closes.
    conn = await connect(statement_cache_size=2)
    try:
        out = []
        for limit in (100, 1000, 2000, 100, 1000, 2000):
            out.append(await conn.fetchval("SELECT count(*) FROM orders WHERE id <= $1", limit))
            out.append(await conn.fetchval("SELECT count(*) FROM customers WHERE id <= $1", limit))
            out.append(await conn.fetchval("SELECT count(*) FROM orders WHERE id <= $1 AND status = 'paid'", limit))
        return out
    finally:
        await conn.close()


async def c_cursor():
    conn = await connect()
    try:
        async with conn.transaction():
            ids = [r["id"] async for r in conn.cursor("SELECT id FROM orders WHERE id > $1 ORDER BY id", 0, prefetch=500)]
            cur = await conn.cursor("SELECT id FROM orders ORDER BY id")
            head = [r["id"] for r in await cur.fetch(3)]
            await cur.forward(10)
            after = (await cur.fetchrow())["id"]
        return {"count": len(ids), "first": ids[:3], "last": ids[-1], "sum": sum(ids), "head": head, "after_forward": after}
    finally:
        await conn.close()


async def c_copy():
    conn = await connect()
    try:
        buf = io.BytesIO()
        await conn.copy_from_query("SELECT id, region FROM orders WHERE id <= $1 ORDER BY id", 100, output=buf, format="csv")
        lines = buf.getvalue().decode().splitlines()
        return {"lines": len(lines), "head": lines[:2]}
    finally:
        await conn.close()


async def c_introspection():
    # set_type_codec looks the type up in pg_catalog (asyncpg's introspection queries), then decodes with it.
    conn = await connect()
    try:
        await conn.set_type_codec("numeric", schema="pg_catalog", encoder=str, decoder=lambda s: "N" + s, format="text")
        amount = await conn.fetchval("SELECT amount FROM orders ORDER BY id LIMIT 1")
        arr = await conn.fetchval("SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM orders ORDER BY id LIMIT 3) s")
        return {"amount": amount, "array": list(arr)}
    finally:
        await conn.close()


async def main():
    for name, fn in [
        ("connect", c_connect),
        ("governed", c_governed),
        ("refused", c_refused),
        ("params", c_params),
        ("prepared", c_prepared),
        ("statement_cache", c_statement_cache),
        ("cursor", c_cursor),
        ("copy", c_copy),
        ("introspection", c_introspection),
    ]:
        await run_case(name, fn)


asyncio.run(main())
done()
