# Shell functions shared by the recipes in scripts/ (sourced, not run).

# run OUTPUT COMMAND...: runs the command with its JSON summary going to OUTPUT, which only
# appears once the command has succeeded; its log goes beside it. Skipped when OUTPUT exists,
# so a rerun redoes only unfinished work.
run() {
	local dst=$1
	shift
	[ -f "$dst" ] && return 0
	"$@" --json >"$dst.tmp" 2>"${dst%.json}.log"
	mv "$dst.tmp" "$dst"
}

# crop TASK: the reward model's crop of the 128-pixel corner view as vision/'s JSON. It keeps
# the part of the frame where the task happens, so that the 64×64 model input sees it at about
# twice the resolution of the whole frame.
crop() {
	case $1 in
	reach) echo '{"x":28,"y":16,"width":80,"height":80}' ;;
	drawer-open) echo '{"x":20,"y":28,"width":88,"height":88}' ;;
	*) echo '{"x":16,"y":16,"width":96,"height":96}' ;;
	esac
}
