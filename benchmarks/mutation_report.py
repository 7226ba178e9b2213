"""Mutation scores per file from mutmut's cache, with every survivor re-run against the current tests.

    python benchmarks/mutation_report.py SELECTION [--recheck]

run in the directory where `mutmut run --runner "bash benchmarks/mutation_tests.sh SELECTION"` ran (after it
finished: mutmut's cache must not be written by two processes). It prints one Markdown row per mutated file
(mutants, killed, survived, not run) and each survivor's line. With --recheck each mutant not killed (a
survivor, or one an interrupted run left untested) is applied (`mutmut apply ID`), the selection is run on
it, and the file is restored: one that the current tests kill is reported as killed. Deciding which
survivors are equivalent (the same behaviour written otherwise) is a reader's judgement:
docs/verification.md lists them with the reason.
"""
import argparse
import collections
import pathlib
import shutil
import sqlite3
import subprocess

KILLED = {"ok_killed"}
NOT_RUN = {"untested", "skipped"}


def mutants(cache):
    """(id, status, file, line number, line text) of every mutant in mutmut's cache, read-only."""
    db = sqlite3.connect(f"file:{cache}?mode=ro", uri=True)
    query = """select m.id, m.status, s.filename, l.line_number + 1, l.line from Mutant m
               join Line l on m.line = l.id join SourceFile s on l.sourcefile = s.id order by s.filename, m.id"""
    return list(db.execute(query))


def recheck(mutant_id, filename, selection):
    """True when the selection kills the mutant now (the file is restored either way)."""
    original = pathlib.Path(filename)
    backup = original.with_suffix(original.suffix + ".recheck")
    shutil.copyfile(original, backup)
    try:
        subprocess.run(["mutmut", "apply", str(mutant_id)], check=True, capture_output=True)
        run = subprocess.run(["bash", "benchmarks/mutation_tests.sh", selection], capture_output=True)
        return run.returncode != 0
    finally:
        shutil.move(backup, original)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("selection")
    parser.add_argument("--recheck", action="store_true",
                        help="run every mutant not killed again (or for the first time) on the current tests")
    parser.add_argument("--only", type=lambda text: {int(i) for i in text.split(",")}, default=None,
                        help="with --recheck: these mutant ids only (the survivors of a quicker selection)")
    args = parser.parse_args()
    counts = collections.defaultdict(collections.Counter)
    survivors = []
    for mutant_id, status, filename, number, text in mutants(".mutmut-cache"):
        if status not in KILLED and args.recheck and (args.only is None or mutant_id in args.only):
            # a survivor, or a mutant an interrupted run left untested
            status = "ok_killed" if recheck(mutant_id, filename, args.selection) else "bad_survived"
        if status not in KILLED | NOT_RUN:
            survivors.append((filename, number, mutant_id, text.strip()))
        counts[filename]["killed" if status in KILLED else "not run" if status in NOT_RUN else "survived"] += 1
    print("| file | mutants | killed | survived | not run |")
    print("|---|---:|---:|---:|---:|")
    for filename, count in counts.items():
        print(f"| `{filename}` | {sum(count.values())} | {count['killed']} | {count['survived']} | {count['not run']} |")
    for filename, number, mutant_id, text in survivors:
        print(f"- {filename}:{number} (mutant {mutant_id}): `{text}` -> `{mutated_line(mutant_id)}`")


def mutated_line(mutant_id):
    """The mutant's version of its line, from `mutmut show`'s diff."""
    diff = subprocess.run(["mutmut", "show", str(mutant_id)], capture_output=True, text=True).stdout
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return added[0] if added else "?"


if __name__ == "__main__":
    main()
