// Package label turns pairs of recorded camera frames into preference labels: which of
// two frames shows more progress toward the task's goal. It holds the parts every
// labeller shares and none of the labellers themselves:
//
//   - Source: where frames come from (recorded episodes, or labeltest's synthetic ones),
//     addressed by content hash, with simulator ground truth when there is one;
//   - Sampler: which pairs to ask about (Uniform over steps within and across episodes;
//     Disagreement, which lets a reward ensemble pick the most informative candidates,
//     PEBBLE-style);
//   - Labeler: one interface for every labeller. Scripted teachers (package teacher)
//     answer directly; labellers that can be fooled by the order in which two frames are
//     shown (a VLM, package vlm; the position-biased teacher) implement Judge, and
//     Consistent asks them in both orders, k samples each, and votes;
//   - Spec: the labeller grammar ("oracle", "mistake:0.2", "vlm", ...);
//   - Store: the append-only, crash-safe, resumable label file (JSON lines, one Record
//     per pair);
//   - Runner: a labelling run that samples, labels and stores N pairs with bounded
//     concurrency, and resumes where a killed run stopped;
//   - ComputeStats: the label-quality figures (tie, abstain, parse-failure and
//     order-consistency rates, agreement with simulator ground truth by progress gap).
//
// docs/labels.md describes the record format, the prompts and the figures.
package label
