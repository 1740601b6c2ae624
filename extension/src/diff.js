// Word diff (LCS over word and whitespace tokens) for showing a suggested text rewrite.
const TOKEN_RE = /\s+|[^\s]+/gu;
const MAX_CELLS = 4_000_000; // beyond this, show "whole text replaced" rather than an O(n·m) table

export function tokenize(text) {
  return String(text ?? "").match(TOKEN_RE) ?? [];
}

function push(ops, op, text) {
  const last = ops[ops.length - 1];
  if (last && last.op === op) last.text += text;
  else ops.push({ op, text });
}

/** ``[{op: "eq"|"del"|"ins", text}]`` turning ``before`` into ``after``; adjacent ops of a kind are merged. */
export function diffWords(before, after) {
  const a = tokenize(before);
  const b = tokenize(after);
  // common prefix / suffix first (most rewrites touch a few words)
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
  const ops = [];
  if (start > 0) push(ops, "eq", a.slice(0, start).join(""));
  const midA = a.slice(start, endA);
  const midB = b.slice(start, endB);
  const n = midA.length;
  const m = midB.length;
  if (n * m > MAX_CELLS) {
    if (n) push(ops, "del", midA.join(""));
    if (m) push(ops, "ins", midB.join(""));
  } else {
    // lcs[i][j] = LCS length of midA[i:] and midB[j:]
    const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i][j] = midA[i] === midB[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n && j < m) {
      if (midA[i] === midB[j]) { push(ops, "eq", midA[i]); i++; j++; }
      else if (lcs[i + 1][j] >= lcs[i][j + 1]) { push(ops, "del", midA[i]); i++; }
      else { push(ops, "ins", midB[j]); j++; }
    }
    while (i < n) push(ops, "del", midA[i++]);
    while (j < m) push(ops, "ins", midB[j++]);
  }
  if (endA < a.length) push(ops, "eq", a.slice(endA).join(""));
  return ops;
}

/** Rebuild both sides from ops (the diff's invariant). */
export function applyOps(ops) {
  return {
    before: ops.filter((o) => o.op !== "ins").map((o) => o.text).join(""),
    after: ops.filter((o) => o.op !== "del").map((o) => o.text).join(""),
  };
}

/** How many places changed: runs of deletions/insertions (a replaced word counts once). */
export function changedWords(ops) {
  let runs = 0;
  let inRun = false;
  for (const o of ops) {
    const changed = o.op !== "eq";
    if (changed && !inRun && o.text.trim()) runs++;
    if (changed) inRun = inRun || Boolean(o.text.trim());
    else inRun = false;
  }
  return runs;
}
