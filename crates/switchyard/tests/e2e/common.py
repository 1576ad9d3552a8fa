"""Shared helpers of the end-to-end client scripts.

Each script gets one JSON argument (the spec written by the Rust test), runs its checks in
order, prints `ok <check>` for each, and on the first failure prints `FAIL <check>: <why>`
and exits 1. The last line on success is a JSON summary the Rust test reads.
"""

import json
import sys

TOOLS_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"}},
    "required": ["city"],
}


def load_spec():
    if len(sys.argv) != 2:
        print("usage: script.py '<json spec>'", file=sys.stderr)
        sys.exit(2)
    return json.loads(sys.argv[1])


class Checks:
    def __init__(self):
        self.current = "setup"

    def step(self, name):
        self.current = name

    def check(self, condition, why):
        if not condition:
            print(f"FAIL {self.current}: {why}", flush=True)
            sys.exit(1)

    def ok(self, detail=""):
        print(f"ok {self.current} {detail}".rstrip(), flush=True)


def run(main):
    checks = Checks()
    try:
        summary = main(load_spec(), checks)
    except SystemExit:
        raise
    except BaseException as e:  # an unexpected exception is a failure of the current check
        print(f"FAIL {checks.current}: {type(e).__name__}: {e}", flush=True)
        sys.exit(1)
    print(json.dumps(summary), flush=True)


def close(got, want, tolerance=1e-6):
    """Whether two lists of vectors are equal within `tolerance` (f32 through JSON)."""
    return len(got) == len(want) and all(
        len(g) == len(w) and all(abs(a - b) <= tolerance for a, b in zip(g, w)) for g, w in zip(got, want)
    )
