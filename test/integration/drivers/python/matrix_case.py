# Shared by the driver matrix's Python scripts (run by /usr/bin/python3, Debian's packages):
# each script runs its cases in order and prints one JSON object, case name -> outcome,
# {"ok": true, "value": ...} or {"ok": false, "sqlstate": ..., "error": ...}. One case's
# failure never stops the next: the TypeScript test asserts each case on its own.
import json
import sys
import traceback

results = {}


def sqlstate_of(e):
    for attr in ("pgcode", "sqlstate"):
        v = getattr(e, attr, None)
        if isinstance(v, str):
            return v
    diag = getattr(e, "diag", None)
    if diag is not None and getattr(diag, "sqlstate", None):
        return diag.sqlstate
    orig = getattr(e, "orig", None)
    if orig is not None and orig is not e:
        return sqlstate_of(orig)
    # pyodbc: ('42501', '[42501] ERROR: ...')
    args = getattr(e, "args", ())
    if len(args) >= 1 and isinstance(args[0], str) and len(args[0]) == 5:
        return args[0]
    return None


def record_error(name, e):
    results[name] = {
        "ok": False,
        "sqlstate": sqlstate_of(e),
        "error": f"{type(e).__name__}: {e}"[:2000],
        "trace": traceback.format_exc()[-1500:],
    }


def case(name):
    def wrap(fn):
        try:
            results[name] = {"ok": True, "value": fn()}
        except BaseException as e:  # noqa: BLE001 - every failure is a result
            record_error(name, e)
        return fn

    return wrap


def args():
    if len(sys.argv) < 4:
        sys.exit("usage: <script> <port> <user> <password> [variant]")
    return sys.argv[1], sys.argv[2], sys.argv[3], (sys.argv[4] if len(sys.argv) > 4 else "")


def done():
    print(json.dumps(results, default=str))
