package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"robodistill/control/runtime"
)

// CostReport compares, per environment step, the distilled reward with asking a VLM.
type CostReport struct {
	Members         int     `json:"members"`
	RewardFLOPs     float64 `json:"reward_flops_per_step"`
	RewardMillis    float64 `json:"reward_ms_per_step"` // measured p50, one core
	VLMParams       float64 `json:"vlm_params"`
	VLMPromptTokens int     `json:"vlm_prompt_tokens_per_query"`
	VLMAnswerTokens int     `json:"vlm_answer_tokens_per_query"`
	VLMQueries      int     `json:"vlm_queries_per_step"`
	VLMFLOPs        float64 `json:"vlm_flops_per_step"`
	Ratio           float64 `json:"vlm_over_reward_flops"`
}

func (a *app) benchCostCmd() *cobra.Command {
	var (
		path                    string
		params                  float64
		imageTokens, textTokens int
		answerTokens, orders    int
	)
	c := &cobra.Command{
		Use:   "cost",
		Short: "FLOPs and time per environment step: the distilled reward next to a VLM query",
		Long: `Counts the reward ensemble's FLOPs per frame from its graph (every member) and times it
through the runtime on one core, and puts next to it the FLOPs of asking a VLM the same
question each step: about 2 × parameters × tokens for a decoder (prompt tokens in one
forward pass, each answer token one more), times the orders asked. The VLM's figures are
an estimate from its size and token counts, given as flags (defaults: a 7B model, two
images of 224×224 pixels at 64 tokens each as Qwen2.5-VL merges them, a 120-token prompt,
a 200-token answer of the two-stage prompt, both orders).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				return fmt.Errorf("--reward is required")
			}
			ens, err := runtime.LoadEnsemble(path, runtime.Options{})
			if err != nil {
				return err
			}
			r := CostReport{Members: ens.Size(), VLMParams: params, VLMPromptTokens: 2*imageTokens + textTokens,
				VLMAnswerTokens: answerTokens, VLMQueries: orders}
			for i := range ens.Size() {
				r.RewardFLOPs += float64(ens.Member(i).FLOPs())
			}
			frame := make([]float32, ens.Member(0).InputSize())
			res, err := timeCycles(cmd.Context(), 500, func() error { _, _, err := ens.Run(frame); return err })
			if err != nil {
				return err
			}
			r.RewardMillis = res.P50Ms
			r.VLMFLOPs = float64(orders) * 2 * params * float64(r.VLMPromptTokens+answerTokens)
			r.Ratio = r.VLMFLOPs / r.RewardFLOPs
			a.human("per environment step\n")
			a.human("  distilled reward: %d members, %.2f MFLOPs, %.3f ms measured (p50, one core)\n", r.Members, r.RewardFLOPs/1e6, r.RewardMillis)
			a.human("  VLM query (estimate): %.0fB parameters, %d prompt + %d answer tokens, %d orders: %.2f TFLOPs\n",
				params/1e9, r.VLMPromptTokens, answerTokens, orders, r.VLMFLOPs/1e12)
			a.human("  the VLM costs %.3g times the distilled reward's FLOPs per step; at 50 Hz the reward takes %.2f ms of every 20 ms on one core\n",
				r.Ratio, r.RewardMillis)
			return a.summary(r)
		},
	}
	f := c.Flags()
	f.StringVar(&path, "reward", "", "reward model (member 0 of its ensemble)")
	f.Float64Var(&params, "vlm-params", 7e9, "VLM parameters")
	f.IntVar(&imageTokens, "image-tokens", 64, "tokens per image")
	f.IntVar(&textTokens, "text-tokens", 120, "text tokens of the prompt")
	f.IntVar(&answerTokens, "answer-tokens", 200, "answer tokens")
	f.IntVar(&orders, "orders", 2, "queries per pair (both orders)")
	return c
}
