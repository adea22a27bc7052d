// Package distill is robodistill's offline side: it turns simulator rollouts and a
// labeller's preferences into a reward model and a policy for the robot. Its command line
// lives in distill/cli and distill/cmd/robodistill.
//
// This package also holds the repository's layout tests: the import rules between the
// parts of shared/ARCHITECTURE.md and the rule that every package has a doc comment.
package distill
