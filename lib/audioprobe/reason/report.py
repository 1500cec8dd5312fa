"""Text outputs of reason_eval: weights provenance records, the comparison report, example answers."""

from __future__ import annotations

from audioprobe.runtime.provenance import RANDOM_INIT


def weights_records(lm_rec: dict, enc_prov: dict[str, dict]) -> dict[str, dict]:
    """Return {component: {source, sha256}} for the LM and every encoder that has weights (mel has none)."""
    out = {"lm": {"source": lm_rec["source"], "sha256": lm_rec["sha256"]}}
    for enc, prov in sorted(enc_prov.items()):
        if prov.get("weights") in (None, "none"):
            continue
        if prov["weights"] == RANDOM_INIT:
            out[enc] = {"source": RANDOM_INIT, "sha256": None}
        else:
            out[enc] = {"source": prov["weights"], "sha256": prov.get("sha256")}
    return out


def arm_labels(encoders: dict[str, str | None], enc_prov: dict[str, dict]) -> dict[str, str]:
    """{arm: label} for tables, legends and console lines: `<arm> (random-init)` for an arm whose encoder
    (`encoders[arm]`, None for blind) ran with random weights, the arm's name otherwise."""
    return {a: f"{a} ({RANDOM_INIT})" if e and enc_prov.get(e, {}).get("weights") == RANDOM_INIT else a
            for a, e in encoders.items()}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def report_markdown(arms: list[str], table: list[dict], pairs: list[dict], lm_rec: dict,
                    enc_prov: dict[str, dict], notes: list[str], n_rows: int,
                    labels: dict[str, str] | None = None) -> str:
    """Return the markdown report: banners, overall table with CIs, paired tests, provenance
    (arms shown by `labels`, e.g. `htsat (random-init)`)."""
    name = (labels or {}).get
    lines = ["# reason: test-split comparison", ""]
    lines += [f"**WARNING: {n}**" for n in notes] + ([""] if notes else [])
    lines += [f"{n_rows} test rows; exact match after normalisation (case, punctuation, articles, whitespace); "
              "95 % percentile-bootstrap CIs.", "",
              "| arm | exact match % | 95 % CI | letter acc % (MCQ) | yes/no acc % | token F1 |",
              "|---|---|---|---|---|---|"]
    cell = {(r["arm"], r["metric"]): r for r in table if r["group"] == "overall"}
    for a in arms:
        em = cell[(a, "em")]
        letter = _pct(cell[(a, "letter")]["mean"]) if (a, "letter") in cell else "n/a"
        yn = _pct(cell[(a, "yes_no")]["mean"]) if (a, "yes_no") in cell else "n/a"
        lines.append(f"| {name(a, a)} | {_pct(em['mean'])} | {_pct(em['ci_low'])}–{_pct(em['ci_high'])} | {letter} | {yn} "
                     f"| {cell[(a, 'f1')]['mean']:.3f} |")
    lines += ["", "Paired comparisons on the same questions (exact match):", "",
              "| a | b | a − b (pp) | 95 % CI | p (paired bootstrap) | p (McNemar) | only a right | only b right |",
              "|---|---|---|---|---|---|---|---|"]
    for p in pairs:
        lines.append(f"| {name(p['arm_a'], p['arm_a'])} | {name(p['arm_b'], p['arm_b'])} | {100 * p['diff']:+.1f} | {100 * p['ci_low']:+.1f}…"
                     f"{100 * p['ci_high']:+.1f} | {p['p_bootstrap']:.4f} | {p['p_mcnemar']:.4f} | {p['only_a']} "
                     f"| {p['only_b']} |")
    lines += ["", "Weights:", "", f"- LM: {lm_rec['name']} ({lm_rec['source']}, sha256 {lm_rec['sha256'][:12]})"]
    for enc, prov in sorted(enc_prov.items()):
        shown = {k: v for k, v in prov.items() if k != "path"}  # no host paths in committed files
        lines.append(f"- encoder {enc}: " + ", ".join(f"{k}={v}" for k, v in sorted(shown.items())))
    return "\n".join(lines) + "\n"


def examples_markdown(rows: list[dict], preds: dict[str, list[str]], scores: dict[str, list[dict]], n: int,
                      notes: list[str], labels: dict[str, str] | None = None) -> str:
    """Return a markdown table of the first `n` test questions per question type with every arm's answer."""
    arms = list(preds)
    picked, seen = [], {}
    for i, r in enumerate(rows):  # round-robin over tasknames so each type shows up
        seen.setdefault(r["taskname"], []).append(i)
    while len(picked) < min(n, len(rows)):
        for idx in seen.values():
            if idx and len(picked) < n:
                picked.append(idx.pop(0))
    picked.sort()
    lines = ["# reason: example answers (test split; ✓ = exact match)", ""]
    lines += [f"**WARNING: {t}**" for t in notes] + ([""] if notes else [])
    lines += ["| # | type | question | gold | " + " | ".join((labels or {}).get(a, a) for a in arms) + " |",
              "|---|---|---|---|" + "---|" * len(arms)]
    esc = lambda s: s.replace("|", "\\|").replace("\n", " ")  # noqa: E731
    for i in picked:
        r = rows[i]
        answers = [f"{esc(preds[a][i]) or '∅'} {'✓' if scores[a][i]['em'] else '✗'}" for a in arms]
        lines.append(f"| {i} | {r['taskname']}/{r['subtype']} | {esc(r['input'])} | {esc(r['answer'])} | "
                     + " | ".join(answers) + " |")
    return "\n".join(lines) + "\n"
