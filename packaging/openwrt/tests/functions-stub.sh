# shellcheck shell=sh
# A stand-in for the few calls of OpenWrt's /lib/functions.sh and procd.sh that
# files/netheal.init uses, for packaging/tests/openwrt.sh. config_load reads $UCI_FILE the way
# functions.sh reads `uci export`: the file's lines are calls of config, option and list.
# procd_* and logger only log their arguments to $STUB_LOG; procd_running answers
# $STUB_RUNNING. Values are kept in CONFIG_<section>_<option>, lists joined by blanks, as
# functions.sh keeps them.
# The CONFIG_* variables are read through eval:
# shellcheck disable=SC2034

CONFIG_SECTIONS=
CONFIG_SECTION=
_stub_n=0

config() {
	_stub_n=$((_stub_n + 1))
	CONFIG_SECTION=${2:-cfg$_stub_n}
	CONFIG_SECTIONS="$CONFIG_SECTIONS $CONFIG_SECTION"
	eval "CONFIG_${CONFIG_SECTION}_TYPE=\$1"
}
option() {
	eval "CONFIG_${CONFIG_SECTION}_$1=\$2"
}
list() {
	eval "CONFIG_${CONFIG_SECTION}_$1=\"\${CONFIG_${CONFIG_SECTION}_$1:+\$CONFIG_${CONFIG_SECTION}_$1 }\$2\""
}
package() { :; }
config_load() {
	[ "$1" = netheal ] || return 1
	# shellcheck source=/dev/null
	. "$UCI_FILE"
}
config_get() {
	eval "$1=\${CONFIG_$2_$3:-\$4}"
}
config_foreach() {
	_fn=$1 _type=$2 _s=
	shift 2
	for _s in $CONFIG_SECTIONS; do
		eval "_t=\$CONFIG_${_s}_TYPE"
		# shellcheck disable=SC2154 # _t is set by the eval
		[ -z "$_type" ] || [ "$_t" = "$_type" ] || continue
		"$_fn" "$_s" "$@"
	done
}
procd_open_instance() { echo "procd_open_instance $*" >>"$STUB_LOG"; }
procd_set_param() { echo "procd_set_param $*" >>"$STUB_LOG"; }
procd_close_instance() { echo "procd_close_instance $*" >>"$STUB_LOG"; }
procd_send_signal() { echo "procd_send_signal $*" >>"$STUB_LOG"; }
procd_add_reload_trigger() { echo "procd_add_reload_trigger $*" >>"$STUB_LOG"; }
procd_running() { [ "${STUB_RUNNING:-0}" = 1 ]; }
logger() { echo "logger $*" >>"$STUB_LOG"; }
start() { start_service; }
