#!/usr/bin/env python3
"""check_tasks.py - checks the shipped tasks of suites/tasks/ without the generator.

    python3 suites/tasks/check_tasks.py            # exit 0 when every check holds
    python3 suites/tasks/check_tasks.py --review   # also prints every item, right answer marked

The same checks run in C in tests/test_tasks.c (CI has no Python): the format, 4
distinct non-empty choices, no duplicated context, each answer position used by
15-35% of items, every arithmetic item recomputed, the category counts and the text's
document and word counts that README.md states.
"""
import collections
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CATEGORIES = {"arithmetic": 60, "knowledge": 70, "common_sense": 60, "language": 50}
TEXT_DOCS, TEXT_WORDS = 5, 5334
ARITH = re.compile(r"^Question: What is (\d+) (\+|-|times|divided by) (\d+)\?\nAnswer:$")


def arith_answer(context):
    """The recomputed answer of an arithmetic context, or None when it is not one."""
    m = ARITH.match(context)
    if not m:
        return None
    a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
    if op == "divided by":
        return a // b if b and a % b == 0 else None
    return {"+": a + b, "-": a - b, "times": a * b}[op]


def main():
    review = "--review" in sys.argv
    errors = []
    rows = [json.loads(l) for l in open(os.path.join(HERE, "everyday-mc.jsonl"), encoding="utf-8") if l.strip()]
    defn = json.load(open(os.path.join(HERE, "everyday-mc.json")))
    if defn.get("name") != "everyday-mc" or defn.get("type") != "multiple_choice" or defn.get("num_fewshot", 0) != 0:
        errors.append("everyday-mc.json: name, type or num_fewshot")
    seen, pos, cats = set(), collections.Counter(), collections.Counter()
    for i, r in enumerate(rows, 1):
        where = "line %d" % i
        ctx, ch, ans, cat = r.get("context"), r.get("choices"), r.get("answer"), r.get("category")
        if set(r) != {"id", "category", "context", "choices", "answer"}:
            errors.append("%s: fields %s" % (where, sorted(r)))
        if not isinstance(ch, list) or len(ch) != 4 or len(set(ch)) != 4 or not all(isinstance(c, str) and c.strip() == c and c for c in ch):
            errors.append("%s: choices %r" % (where, ch))
            continue
        if not isinstance(ans, int) or not 0 <= ans < 4:
            errors.append("%s: answer %r" % (where, ans))
            continue
        if not ctx.startswith("Question: ") or not ctx.endswith("?\nAnswer:"):
            errors.append("%s: context form %r" % (where, ctx))
        if ctx in seen:
            errors.append("%s: duplicate context %r" % (where, ctx))
        seen.add(ctx)
        pos[ans] += 1
        cats[cat] += 1
        want = arith_answer(ctx)
        if (cat == "arithmetic") != (want is not None):
            errors.append("%s: category %s but arithmetic form %s" % (where, cat, want is not None))
        if want is not None:
            if ch[ans] != str(want):
                errors.append("%s: %r: answer %s, recomputed %d" % (where, ctx, ch[ans], want))
            if str(want) in [c for k, c in enumerate(ch) if k != ans]:
                errors.append("%s: the right value is also a wrong choice" % where)
        if review:
            print("%-13s %-75s %s" % (cat, ctx.split("\n")[0][10:],
                                     " | ".join(("[%s]" % c) if k == ans else c for k, c in enumerate(ch))))
    if len(rows) < 200:
        errors.append("%d items, fewer than 200" % len(rows))
    for k in range(4):
        share = pos[k] / max(len(rows), 1)
        if not 0.15 <= share <= 0.35:
            errors.append("answer position %d holds %.1f%% of items" % (k, 100 * share))
    if dict(cats) != CATEGORIES:
        errors.append("categories %s, README says %s" % (dict(cats), CATEGORIES))

    docs = [json.loads(l) for l in open(os.path.join(HERE, "austen-pp.jsonl"), encoding="utf-8") if l.strip()]
    words = sum(len(d["text"].split()) for d in docs)
    if len(docs) != TEXT_DOCS or words != TEXT_WORDS or not 3000 <= words <= 6000:
        errors.append("austen-pp: %d documents and %d words, README says %d and %d" % (len(docs), words, TEXT_DOCS, TEXT_WORDS))
    if any(set(d) != {"text"} or "_" in d["text"] or "\r" in d["text"] for d in docs):
        errors.append("austen-pp: a document with other fields, an underscore or a CR")

    print("everyday-mc: %d items, categories %s, answer positions %s" % (len(rows), dict(cats), [pos[k] for k in range(4)]))
    print("austen-pp: %d documents, %d words, %d bytes" % (len(docs), words, sum(len(d["text"].encode()) for d in docs)))
    for e in errors:
        print("ERROR", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
