// Package reward distils preference labels into a reward model: a small CNN ensemble
// trained with the Bradley-Terry loss on camera frames, exported to ONNX with a manifest.
//
// A run (Run, `robodistill reward train`) has four parts:
//
//   - LoadDataset joins a label file with the recorded episodes it names, runs every
//     frame through vision/ (the preprocessing the daemon applies to live frames) and
//     splits the labels into training and validation by episode, so that no frame of a
//     validation episode is ever trained on.
//   - Trainer trains the ensemble: members differ in initial weights, batch order and
//     augmentation (random shift), each from its own seeded generator, so a run is
//     bit-for-bit repeatable and does not depend on how many members train at once.
//     Ties are 0.5 targets; label smoothing is optional; each member keeps the weights
//     of its best validation epoch and stops early. Each epoch is checkpointed, and an
//     interrupted run continues where it stopped.
//   - Normalize fits Motif's normalisation (mean, standard deviation, optional quantile
//     floor) on the training frames; Counter is the count-based exploration term
//     r/N(o)^β the policy trainer may apply.
//   - Evaluate and the report measure the result on the held-out episodes: preference
//     accuracy, agreement with ground truth, ensemble disagreement, Pearson and Spearman
//     correlation with the simulator's reward, FLOPs per frame, and the "milestones"
//     figure of reward along successful and failed episodes.
//
// docs/reward.md has the design and the measured figures.
package reward
