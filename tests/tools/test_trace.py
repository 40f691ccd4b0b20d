# SPDX-License-Identifier: MIT
"""Checks `hmmu --trace` files and `hmmu trace-summary` (docs/trace.md).

usage: test_trace.py HMMU_BINARY WORKDIR

Records `hmmu stat` and `hmmu demo` with --trace, reads each file with the
json module, checks it against the trace-event format (fields, B/E pairing
per thread, timestamps ordered per thread), checks that its event counts
match the counter deltas hmmu wrote into otherData.hmmu_stat, then checks
the output of `hmmu trace-summary` against the same file.
"""
import collections
import json
import os
import subprocess
import sys

HMMU, WORK = sys.argv[1], sys.argv[2]


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def run(args, expect=0):
    p = subprocess.run([HMMU] + args, capture_output=True, text=True)
    check(p.returncode == expect,
          f"hmmu {' '.join(args)}: exit {p.returncode}, wanted {expect}\n{p.stdout}\n{p.stderr}")
    return p


def record(args, name):
    path = os.path.join(WORK, name)
    if os.path.exists(path):
        os.remove(path)
    out = run(args[:1] + ["--trace", path] + args[1:] if args[0] == "stat" else ["--trace", path] + args).stdout
    with open(path) as f:
        return path, json.load(f), out


def demo_device_faults(out):
    """The demo's device table: the sum of its faults column."""
    lines = out.splitlines()
    i = next(i for i, l in enumerate(lines) if l.split()[:2] == ["device", "faults"])
    rows = [l.split() for l in lines[i + 1:] if l.split() and l.split()[0].isdigit()]
    check(rows, f"no device rows in the demo's output:\n{out}")
    return sum(int(r[1]) for r in rows)


def spans(trace):
    """Check the format; return the spans as (name, B event, E event)."""
    check(isinstance(trace, dict) and isinstance(trace.get("traceEvents"), list), "no traceEvents array")
    check(isinstance(trace.get("otherData", {}).get("hmmu_stat"), dict), "no otherData.hmmu_stat")
    stacks, last_ts, out = collections.defaultdict(list), {}, []
    for e in trace["traceEvents"]:
        for field, kind in (("name", str), ("ph", str), ("pid", int), ("tid", int)):
            check(isinstance(e.get(field), kind), f"event without a valid {field}: {e}")
        check(e["ph"] in ("B", "E", "M"), f"unexpected phase: {e}")
        if e["ph"] == "M":
            check(isinstance(e.get("args", {}).get("name"), str), f"metadata event without args.name: {e}")
            continue
        check(isinstance(e.get("ts"), (int, float)) and e["ts"] >= 0, f"event without a valid ts: {e}")
        check(isinstance(e.get("cat"), str) and isinstance(e.get("args"), dict), f"event without cat/args: {e}")
        thread = (e["pid"], e["tid"])
        check(e["ts"] >= last_ts.get(thread, 0), f"timestamps go back on thread {thread}: {e}")
        last_ts[thread] = e["ts"]
        if e["ph"] == "B":
            stacks[thread].append(e)
            continue
        check(stacks[thread], f"E without B on thread {thread}: {e}")
        b = stacks[thread].pop()
        check(b["name"] == e["name"], f"E {e['name']} closes B {b['name']} on thread {thread}")
        out.append((e["name"], b, e))
    for thread, st in stacks.items():
        if st:
            fail(f"B without E on thread {thread}: {st[-1]}")
    return out


def check_counts(trace, sp, coherent_moves_possible):
    """The spans against the counter deltas of the traced period."""
    other, st = trace["otherData"], trace["otherData"]["hmmu_stat"]
    for field in ("dropped_events", "unmatched_ends", "open_at_stop"):
        check(other[field] == 0, f"otherData.{field} = {other[field]}")
    count = collections.Counter(name for name, _, _ in sp)
    done = collections.Counter()
    for name, _, e in sp:
        done[name] += e["args"].get("done", 0)
    check(count["fault"] > 0 and count["fault"] == st["fault"],
          f"{count['fault']} fault spans, counter fault = {st['fault']}")
    for name in (n for n in st if n.startswith("invalidate_")):
        check(count[name] == st[name], f"{count[name]} {name} spans, counter = {st[name]}")
    check(done["migrate_device_range"] == st["evict"],
          f"migrate_device_range collected {done['migrate_device_range']}, counter evict = {st['evict']}")
    # A coherent page moved before a long-term pin commits untraced.
    succeeded = st["migrate_to_device_succeeded"] + st["migrate_to_system_succeeded"]
    migrated = done["migrate_pages"] + done["migrate_device_pages"]
    check(migrated == succeeded or (coherent_moves_possible and migrated < succeeded),
          f"migrate_*pages spans migrated {migrated}, counters succeeded {succeeded}")
    attempted = st["migrate_to_device_attempted"] + st["migrate_to_system_attempted"]
    collected = done["migrate_setup"] + done["migrate_device_range"]
    check(collected <= attempted, f"setup collected {collected} > attempted {attempted}")
    check(count["migrate_setup"] == count["migrate_pages"] == count["migrate_finalize"],
          f"setup/pages/finalize spans: {count['migrate_setup']}/{count['migrate_pages']}/{count['migrate_finalize']}")
    return count, succeeded


def check_summary(path, sp):
    """trace-summary's top list and per-name table against the spans."""
    out = run(["trace-summary", "--top", "3", path]).stdout.splitlines()
    durs = sorted((e["ts"] - b["ts"] for _, b, e in sp), reverse=True)
    i = out.index("slowest 3 spans:")
    top = [float(line.split()[0]) for line in out[i + 2:i + 5]]
    check(all(abs(t - d) < 0.002 for t, d in zip(top, durs[:3])), f"slowest spans {top}, wanted {durs[:3]}")
    table = {line.split()[0]: line.split()[1:] for line in out[out.index(next(l for l in out if l.startswith("per name"))) + 1:]}
    for name in set(n for n, _, _ in sp):
        d = [e["ts"] - b["ts"] for n, b, e in sp if n == name]
        cnt, total, mx = int(table[name][0]), float(table[name][1]), float(table[name][2])
        check(cnt == len(d) and abs(total - sum(d)) < 0.002 * len(d) and abs(mx - max(d)) < 0.002,
              f"trace-summary {name}: {table[name]}, wanted {len(d)} {sum(d):.3f} {max(d):.3f}")


def check_summary_inputs():
    """A bare array with X events; malformed files fail with a line number."""
    path = os.path.join(WORK, "array.json")
    with open(path, "w") as f:
        json.dump([{"name": "a", "ph": "X", "ts": 1, "dur": 5, "pid": "p", "tid": 1, "args": {"x": [1, {"y": None}]}},
                   {"name": "b", "ph": "B", "ts": 2, "pid": 1, "tid": 2}, {"ph": "E", "ts": 9.5, "pid": 1, "tid": 2},
                   {"name": "a", "ph": "X", "ts": 3, "dur": 1.5, "pid": "p", "tid": 1}], f)
    out = run(["trace-summary", path]).stdout
    check("4 events, 3 spans, 2 threads" in out, f"array form:\n{out}")
    check(any(l.split()[:4] == ["a", "2", "6.500", "5.000"] for l in out.splitlines()), f"array form totals:\n{out}")
    check(any(l.split()[:3] == ["b", "1", "7.500"] for l in out.splitlines()), f"array form B/E:\n{out}")
    for bad, line in (('{"traceEvents": [\n{"ph": "B",\n', 3), ('{"traceEvents": [] ]', 1), ('{"x": 1}', 1),
                      ('[{"name": "\\q"}]', 1), ('{"traceEvents": [{"ts": 01x}]}', 1)):
        with open(path, "w") as f:
            f.write(bad)
        err = run(["trace-summary", path], expect=1).stderr
        check(f"line {line}:" in err, f"malformed {bad!r}: {err}")


def main():
    os.makedirs(WORK, exist_ok=True)
    path, trace, _ = record(["stat"], "stat.json")
    sp = spans(trace)
    count, succeeded = check_counts(trace, sp, coherent_moves_possible=False)
    for name in ("device_fault", "evict", "migrate_setup"):
        check(count[name] > 0, f"no {name} span in hmmu stat's trace")
    check(succeeded > 0, "hmmu stat migrated nothing")
    check_summary(path, sp)
    _, trace, out = record(["demo", "--size", "16"], "demo.json")
    count, _ = check_counts(trace, spans(trace), coherent_moves_possible=True)
    check(count["device_fault"] == demo_device_faults(out),
          f"device_fault spans {count['device_fault']}, the demo counted {demo_device_faults(out)}")
    path = os.path.join(WORK, "idle.json")
    run(["stat", "--no-workload", "--trace=" + path])
    with open(path) as f:
        trace = json.load(f)
    check(not spans(trace) and trace["otherData"]["hmmu_stat"]["fault"] == 0, "hmmu stat --no-workload traced work")
    check("needs a FILE" in run(["stat", "--trace"], expect=2).stderr, "--trace without FILE accepted")
    check_summary_inputs()
    print("trace files, counts and trace-summary: ok")


main()
