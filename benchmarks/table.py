"""Every benchmark figure in one table: benchmarks/results.json and benchmarks/results.md.

Each benchmark script has a `rows(quick)` function returning its rows (`benchmarks/rows.py`: name, baseline,
value, ratio, goal, met, unit); this script calls them in turn and writes

- results.json: `{"host": {...}, "quick": bool, "rows": [...], "seconds": wall time, "source_seconds": {source:
  seconds}}`;
- results.md: the same as a Markdown table, with the host (CPU model, AMX flags, cores, TensorFlow version,
  date, load average before and after) above it.

A source that fails is reported as a row with `met: null` and the error, and the others still run.

    python benchmarks/table.py --quick          # make bench-quick: small sizes, <= 15 min on 2 cores
    python benchmarks/table.py                  # make bench: full sizes, the test suite's wall time; about an hour
    python benchmarks/table.py --only precision,overhead
"""
import argparse
import datetime
import importlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# (module, what it measures), in the order of the table. `suite` is the test suite's wall time (full table only).
SOURCES = (
    ("overhead", "MLP epoch vs plain Keras"),
    ("image_overhead", "image head epoch vs plain Keras"),
    ("text_overhead", "text fine-tune vs keras-hub; bfloat16 (full table only)"),
    ("precision", "bfloat16 vs float32 per workload"),
    ("bbc_news", "bfloat16 on BBC News: speed and accuracy"),
    ("feature_cache", "feature cache first/later run"),
    ("tune_trials", "tl-app tune head trials: data decoded once per tune (full table only)"),
    ("serving", "serving throughput and latency"),
    ("tflite", "TFLite int8"),
    ("mlm", "masked-LM adapt vs keras-hub"),
    ("evaluation", "evaluation share of a run"),
    ("suite", "test-suite wall time"),
)


def host():
    """What the figures depend on: CPU model and bfloat16 flags, cores, TensorFlow version, date, load."""
    from tl_app.engine.precision import cpu_flags

    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.partition(":")[2].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    version = subprocess.run([sys.executable, "-c", "import tensorflow as tf; print(tf.__version__)"],
                             capture_output=True, text=True).stdout.strip().splitlines()
    flags = sorted(cpu_flags() & {"amx_bf16", "amx_tile", "amx_int8", "avx512_bf16", "avx512f", "avx512_vnni"})
    return {"cpu": model or platform.processor(), "flags": flags, "cores": os.cpu_count(),
            "tensorflow": version[-1] if version else "?", "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load_before": [round(x, 2) for x in os.getloadavg()]}


def suite_rows(quick=False):
    """The whole test suite's wall time (goal: <= 10 minutes on the 2-core host); only in the full table."""
    from rows import row

    if quick:
        return []
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q"], cwd=os.path.dirname(HERE), capture_output=True,
                            text=True)
    seconds = time.perf_counter() - started
    last = (result.stdout.strip().splitlines() or ["?"])[-1]
    return [row("test-suite wall time", 600.0, seconds, 1.0, "s", higher_is_better=False,
                note=f"goal 600 s; pytest: {last}")]


def collect(names, quick, seconds):
    """Rows of each source in `names`; a failing source becomes one row saying so. `seconds` gets each
    source's wall time."""
    rows = []
    for name in names:
        started = time.perf_counter()
        print(f"== {name}: {dict(SOURCES)[name]}", flush=True)
        try:
            found = suite_rows(quick) if name == "suite" else importlib.import_module(name).rows(quick=quick)
        except (Exception, SystemExit) as exc:  # one broken source must not lose the others' figures
            traceback.print_exc()
            found = [{"name": f"{name}: failed", "baseline": None, "value": None, "ratio": None, "goal": None,
                      "met": None, "unit": "", "note": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"}]
        for r in found:
            r["source"] = f"benchmarks/{name}.py" if name != "suite" else "pytest"
            print(f"   {r['name']}: {r['value']} vs {r['baseline']} {r['unit']}, ratio {r['ratio']} "
                  f"(goal {r['goal']}: {_met(r['met'])})", flush=True)
        seconds[name] = round(time.perf_counter() - started)
        print(f"   ({seconds[name]} s)", flush=True)
        rows.extend(found)
    return rows


def _met(met):
    return {True: "met", False: "NOT met", None: "-"}[met]


def markdown(result):
    h = result["host"]
    lines = [f"# tl_app benchmark table ({'quick' if result['quick'] else 'full'})", "",
             f"- host: {h['cpu']}, {h['cores']} cores; flags: {', '.join(h['flags']) or 'no AVX-512/AMX'}",
             f"- TensorFlow {h['tensorflow']}, Python {h['python']}; {h['date']}; load average before"
             f" {h['load_before']}, after {h.get('load_after')}; wall time {result['seconds']:.0f} s",
             *([f"- seconds by source: {', '.join(f'{n} {s}' for n, s in result['source_seconds'].items())}"]
               if result.get("source_seconds") else []),
             *[f"- re-run later: {', '.join(p['sources'])} ({p['date']}, load average {p['load_before']} ->"
               f" {p['load_after']}{_seconds(p)})" for p in h.get("partial_runs", [])],
             f"- goals met: {sum(r['met'] is True for r in result['rows'])} of"
             f" {sum(r['met'] is not None for r in result['rows'])} rows with a goal", "",
             "| measure | baseline | tl_app | unit | ratio | goal | met | notes |",
             "| --- | ---: | ---: | --- | ---: | --- | --- | --- |"]
    for r in result["rows"]:
        lines.append(f"| {r['name']} | {_fmt(r['baseline'])} | {_fmt(r['value'])} | {r['unit']} | {_fmt(r['ratio'])}"
                     f" | {r['goal'] or ''} | {_met(r['met'])} | {r.get('note', '')} ({r['source']}) |")
    return "\n".join(lines) + "\n"


def _seconds(partial):
    return f"; {sum(partial['seconds'].values())} s" if partial.get("seconds") else ""


def _fmt(x):
    return "" if x is None else f"{x:.4g}" if isinstance(x, float) else str(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (make bench-quick)")
    parser.add_argument("--only", help="comma-separated sources, of " + ", ".join(n for n, _ in SOURCES)
                        + "; their rows replace theirs in an existing results.json, the others are kept")
    parser.add_argument("--out-dir", default=HERE, help="where results.json and results.md go")
    args = parser.parse_args()
    names = [n for n, _ in SOURCES] if not args.only else args.only.split(",")
    unknown = set(names) - dict(SOURCES).keys()
    if unknown:
        sys.exit(f"error: unknown source(s) {', '.join(sorted(unknown))}; choose from {', '.join(dict(SOURCES))}")
    started = time.perf_counter()
    result = {"host": host(), "quick": args.quick}
    seconds = {}
    result["rows"] = collect(names, args.quick, seconds)
    previous = os.path.join(args.out_dir, "results.json")
    if args.only and os.path.isfile(previous):  # a partial run replaces its sources' rows, keeps the others'
        with open(previous, encoding="utf-8") as f:
            kept = json.load(f)
        ran = {f"benchmarks/{n}.py" if n != "suite" else "pytest" for n in names}
        rows_by_source = {}
        for r in kept.get("rows", []) + result["rows"]:
            rows_by_source.setdefault(r["source"], [])
        for r in kept.get("rows", []):
            if r["source"] not in ran:
                rows_by_source[r["source"]].append(r)
        for r in result["rows"]:
            rows_by_source[r["source"]].append(r)
        result["rows"] = [r for rs in rows_by_source.values() for r in rs]
        this = {"sources": names, "date": result["host"]["date"], "load_before": result["host"]["load_before"],
                "load_after": [round(x, 2) for x in os.getloadavg()]}
        result["host"] = dict(kept["host"], partial_runs=kept["host"].get("partial_runs", []) + [this])
        result["seconds"] = kept.get("seconds", 0)
        result["source_seconds"] = kept.get("source_seconds", {})
        this["seconds"] = seconds
    else:
        result["source_seconds"] = seconds
    result.setdefault("seconds", round(time.perf_counter() - started))
    result["host"].setdefault("load_after", [round(x, 2) for x in os.getloadavg()])
    with open(os.path.join(args.out_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(args.out_dir, "results.md"), "w", encoding="utf-8") as f:
        f.write(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
