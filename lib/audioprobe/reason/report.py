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


def _p(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.4f}"


def type_markdown(arms: list[str], table: list[dict], baseline: list[dict], type_pairs: list[dict],
                  labels: dict[str, str] | None = None) -> list[str]:
    """The per-type section: exact match per arm and of the train-majority answer, then each arm pair's
    paired difference per type with McNemar's p (raw and Holm-adjusted across types)."""
    name = (labels or {}).get
    em = {(r["arm"], r["value"]): r for r in table + baseline if r["metric"] == "em" and r["group"] == "taskname"}
    types = sorted({v for _, v in em})
    lines = ["", "## By question type", "",
             "Exact match % per type. `majority` answers every question with its type's most frequent gold "
             "answer in the train split: what the question type alone gives, with no model and no audio.", "",
             "| type | n | majority % | " + " | ".join(f"{name(a, a)} %" for a in arms) + " |",
             "|---|---|---|" + "---|" * len(arms)]
    for t in types:
        n = em[(arms[0], t)]["n"]
        maj = _pct(em[("majority", t)]["mean"]) if ("majority", t) in em else "n/a"
        lines.append(f"| {t} | {n} | {maj} | " + " | ".join(
            f"{_pct(em[(a, t)]['mean'])} [{_pct(em[(a, t)]['ci_low'])}, {_pct(em[(a, t)]['ci_high'])}]"
            for a in arms) + " |")
    lines += ["", "Paired differences per type (same questions; p uncorrected, and Holm-adjusted across the "
              "types of each pair):", "",
              "| a | b | type | n | a − b (pp) | 95 % CI | p (McNemar) | p (Holm) | only a right | only b right |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for p in type_pairs:
        lines.append(f"| {name(p['arm_a'], p['arm_a'])} | {name(p['arm_b'], p['arm_b'])} | {p['taskname']} | {p['n']} "
                     f"| {100 * p['diff']:+.1f} | "
                     f"{100 * p['ci_low']:+.1f}…{100 * p['ci_high']:+.1f} | {_p(p['p_mcnemar'])} | "
                     f"{_p(p.get('p_mcnemar_holm'))} | {p['only_a']} | {p['only_b']} |")
    return lines


def report_markdown(arms: list[str], table: list[dict], pairs: list[dict], lm_rec: dict,
                    enc_prov: dict[str, dict], notes: list[str], n_rows: int, *, baseline: list[dict] = (),
                    type_pairs: list[dict] = (), decode: dict | None = None,
                    labels: dict[str, str] | None = None) -> str:
    """Return the markdown report: banners, overall table with CIs, paired tests, the per-type
    section (with `baseline`, `type_pairs`), the decoding budget (with `decode`), provenance
    (arms shown by `labels`, e.g. `htsat (random-init)`)."""
    name = (labels or {}).get
    lines = ["# reason: test-split comparison", ""]
    lines += [f"**WARNING: {n}**" for n in notes] + ([""] if notes else [])
    lines += [f"{n_rows} test rows; exact match after normalisation (case, punctuation, articles, whitespace); "
              "95 % percentile-bootstrap CIs."]
    if decode is not None:
        lines += ["", f"Greedy decoding, at most {decode['budget']} new tokens per answer (the longest gold answer "
                  f"needs {decode['need']} with its EOS). `cut` = answers still running at that budget, scored "
                  "as they stand."]
    lines += ["", "| arm | exact match % | 95 % CI | letter acc % (MCQ) | yes/no acc % | token F1 | cut |",
              "|---|---|---|---|---|---|---|"]
    cell = {(r["arm"], r["metric"]): r for r in table if r["group"] == "overall"}
    for a in arms:
        em = cell[(a, "em")]
        letter = _pct(cell[(a, "letter")]["mean"]) if (a, "letter") in cell else "n/a"
        yn = _pct(cell[(a, "yes_no")]["mean"]) if (a, "yes_no") in cell else "n/a"
        n_cut = decode["cut"][a] if decode is not None else "n/a"
        lines.append(f"| {name(a, a)} | {_pct(em['mean'])} | {_pct(em['ci_low'])}–{_pct(em['ci_high'])} | {letter} "
                     f"| {yn} | {cell[(a, 'f1')]['mean']:.3f} | {n_cut} |")
    maj = next((r for r in baseline if r["group"] == "overall"), None)
    if maj is not None:
        lines.append(f"| majority (train answer per type) | {_pct(maj['mean'])} | {_pct(maj['ci_low'])}–"
                     f"{_pct(maj['ci_high'])} | | | | |")
    lines += ["", "Paired comparisons on the same questions (exact match):", "",
              "| a | b | a − b (pp) | 95 % CI | p (paired bootstrap) | p (McNemar) | only a right | only b right |",
              "|---|---|---|---|---|---|---|---|"]
    for p in pairs:
        lines.append(f"| {name(p['arm_a'], p['arm_a'])} | {name(p['arm_b'], p['arm_b'])} | {100 * p['diff']:+.1f} | {100 * p['ci_low']:+.1f}…"
                     f"{100 * p['ci_high']:+.1f} | {p['p_bootstrap']:.4f} | {p['p_mcnemar']:.4f} | {p['only_a']} "
                     f"| {p['only_b']} |")
    if type_pairs:
        lines += type_markdown(arms, table, list(baseline), list(type_pairs), labels)
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
