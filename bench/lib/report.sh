# report.sh - turns bench/run's raw results into the Markdown table, the targets section
# and the chart data. Sourced by bench/run, which sets RESULTS (one line per pgbench run:
# cell, target, rep, status, tps, transactions, mean ms, p99 ms, CPU s per 1000 tx, peak
# RSS kB, note; tab separated), IDLE (target, clients, RSS kB before, after, status,
# note), SPREAD (xact_commit deltas on primary, replica1, replica2 per routed run), and
# the cell tables CELL_IDS, CELL_LABEL, CELL_TARGETS.
# shellcheck shell=bash
# shellcheck disable=SC2153 # RESULTS, IDLE, SPREAD and the cell tables come from bench/run

# Median of the numbers on stdin (other lines are skipped); "-" when there are none.
report_median() {
	awk '$1 ~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/ { print $1 }' | sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) print "-"
			else if (NR % 2) print v[(NR + 1) / 2]
			else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
		}'
}

# Median of column COL over the successful runs of CELL and TARGET.
report_med() {
	local cell=$1 target=$2 col=$3
	awk -F'\t' -v c="$cell" -v t="$target" -v k="$col" \
		'$1 == c && $2 == t && $4 == "ok" { print $k }' "$RESULTS" | report_median
}

# A over B with DEC decimals, or "-" when either is missing or B is zero.
report_ratio() {
	awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN {
		if (a == "-" || b == "-" || a == "" || b == "" || b + 0 == 0) print "-"
		else printf "%.*f\n", d, a / b
	}'
}

# VALUE with DEC decimals, times MUL (default 1); "-" stays "-".
report_fmt() {
	awk -v v="$1" -v d="$2" -v m="${3:-1}" 'BEGIN {
		if (v == "-" || v == "") print "-"
		else printf "%.*f\n", d, v * m
	}'
}

# 0 (true) when A <= B, both numbers.
report_le() {
	awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "-" && b != "-" && a + 0 <= b + 0) }'
}

# The name a target has in the table, which for pgsluice depends on the cell.
report_target_label() {
	local cell=$1 target=$2
	case "$target" in
	pgsluice)
		case "$cell" in
		reads-16) echo "pgsluice (routing off)" ;;
		insert-64) echo "pgsluice (batch_inserts off)" ;;
		*) echo "pgsluice" ;;
		esac
		;;
	pgsluice-routing) echo "pgsluice (routing on)" ;;
	pgsluice-batch) echo "pgsluice (batch_inserts on)" ;;
	pgbouncer) echo "PgBouncer" ;;
	direct) echo "direct" ;;
	*) echo "$target" ;;
	esac
}

# What the runs of CELL and TARGET have to say: failures, n/a, row counts, spread.
report_notes() {
	local cell=$1 target=$2 notes
	notes=$(awk -F'\t' -v c="$cell" -v t="$target" '
		$1 == c && $2 == t {
			n++
			if ($4 != "ok") { bad++; why = $4 ($11 == "" ? "" : ": " $11) }
			else if ($11 != "") ok_note = $11
		}
		END {
			if (bad > 0 && bad == n && n == 1) print why
			else if (bad > 0) printf "%d of %d runs failed (%s)\n", bad, n, why
			else print ok_note
		}' "$RESULTS")
	if [[ "$cell" == reads-16 && "$target" == pgsluice-routing && -s "$SPREAD" ]]; then
		local spread
		spread=$(awk '{ p += $1; a += $2; b += $3 } END {
			t = p + a + b
			if (t > 0) printf "commits: primary %.0f%%, replica1 %.0f%%, replica2 %.0f%%",
				100 * p / t, 100 * a / t, 100 * b / t }' "$SPREAD")
		notes="${notes:+$notes; }$spread"
	fi
	if [[ "$cell" == select1-1 && "$target" != direct ]]; then
		local added
		added=$(awk -v a="$(report_med "$cell" "$target" 7)" \
			-v d="$(report_med "$cell" direct 7)" \
			'BEGIN { if (a != "-" && d != "-") printf "%+.1f", (a - d) * 1000 }')
		[[ -z "$added" ]] || notes="${notes:+$notes; }$added µs of round trip over direct"
	fi
	# A pipe would end the Markdown cell.
	echo "${notes//|/\/}"
}

# Prints the Markdown table of every cell, then the idle-client rows.
report_table() {
	local cell target tps mean p99 cpu rss d_tps b_tps
	echo "| cell | target | TPS | mean ms | p99 ms | ratio to direct | ratio to PgBouncer" \
		"| CPU s/1000 tx | peak RSS MB | notes |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
	for cell in "${CELL_IDS[@]}"; do
		d_tps=$(report_med "$cell" direct 5)
		b_tps=$(report_med "$cell" pgbouncer 5)
		for target in ${CELL_TARGETS[$cell]}; do
			tps=$(report_med "$cell" "$target" 5)
			mean=$(report_med "$cell" "$target" 7)
			p99=$(report_med "$cell" "$target" 8)
			cpu=$(report_med "$cell" "$target" 9)
			rss=$(report_med "$cell" "$target" 10)
			printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
				"${CELL_LABEL[$cell]}" "$(report_target_label "$cell" "$target")" \
				"$(report_fmt "$tps" 0)" "$(report_fmt "$mean" 3)" \
				"$(report_fmt "$p99" 3)" "$(report_ratio "$tps" "$d_tps")" \
				"$(report_ratio "$tps" "$b_tps")" "$(report_fmt "$cpu" 4)" \
				"$(report_fmt "$rss" 1 0.0009765625)" "$(report_notes "$cell" "$target")"
		done
	done
	local n before after status note per
	while IFS=$'\t' read -r target n before after status note; do
		per=$(awk -v b="$before" -v a="$after" -v n="$n" \
			'BEGIN { if (b ~ /^[0-9]+$/ && a ~ /^[0-9]+$/) printf "%.0f", (a - b) * 1024 / n; else print "-" }')
		if [[ "$status" == ok ]]; then
			note="RSS $(report_fmt "$before" 1 0.0009765625) MB before,"
			note+=" $(report_fmt "$after" 1 0.0009765625) MB with the clients:"
			note+=" $per bytes per idle client"
		else
			note="$status: ${note//|/\/}"
		fi
		printf '| %s idle clients | %s | - | - | - | - | - | - | %s | %s |\n' "$n" \
			"$(report_target_label idle "$target")" "$(report_fmt "$after" 1 0.0009765625)" \
			"$note"
	done <"$IDLE"
}

# Bytes per idle client of TARGET, or "-".
report_idle_bytes() {
	awk -F'\t' -v t="$1" '$1 == t && $5 == "ok" { printf "%.0f", ($4 - $3) * 1024 / $2; f = 1 }
		END { if (!f) print "-" }' "$IDLE"
}

# One line of the targets section: NAME, VERDICT (0 = met), FIGURES.
report_target_line() {
	local verdict=met
	(($2 == 0)) || verdict="NOT met"
	echo "- $1: **$verdict** ($3)"
}

# Prints the targets section: each target of issue 9, met or NOT met, with its figures.
report_targets() {
	local cell s b r figs ok
	echo "## Targets"
	echo

	figs="" ok=0
	for cell in sel-simple-16 sel-simple-100 sel-ext-16 sel-ext-100; do
		s=$(report_med "$cell" pgsluice 9)
		b=$(report_med "$cell" pgbouncer 9)
		r=$(report_ratio "$s" "$b")
		report_le "$r" 0.6 || ok=1
		figs+="${figs:+; }$cell $(report_fmt "$s" 1 1000) vs $(report_fmt "$b" 1 1000) µs/tx = ${r}x"
	done
	report_target_line "Pooler CPU per select-only transaction <= 0.6x PgBouncer's" "$ok" "$figs"

	figs="" ok=0
	for cell in sel-simple-16 sel-ext-16 sel-simple-100 sel-ext-100; do
		local need=1.0
		[[ "$cell" == *-100 ]] && need=1.1
		r=$(report_ratio "$(report_med "$cell" pgsluice 5)" "$(report_med "$cell" pgbouncer 5)")
		report_le "$need" "$r" || ok=1
		figs+="${figs:+; }$cell ${r}x (need $need)"
	done
	report_target_line "Select-only TPS >= 1.1x PgBouncer at 100 clients, >= 1.0x at 16" \
		"$ok" "$figs"

	local on off
	on=$(report_med reads-16 pgsluice-routing 5)
	off=$(report_med reads-16 pgsluice 5)
	r=$(report_ratio "$on" "$off" 3)
	ok=0
	report_le 0.95 "$r" || ok=1
	report_target_line "Routing on costs <= 5% of select-only TPS" "$ok" \
		"routing on $(report_fmt "$on" 0) vs off $(report_fmt "$off" 0) TPS = ${r}x; CPU $(report_fmt "$(report_med reads-16 pgsluice-routing 9)" 1 1000) vs $(report_fmt "$(report_med reads-16 pgsluice 9)" 1 1000) µs/tx"

	local ds bs dd
	dd=$(report_med select1-1 direct 7)
	ds=$(awk -v a="$(report_med select1-1 pgsluice 7)" -v d="$dd" \
		'BEGIN { if (a == "-" || d == "-") print "-"; else printf "%.1f", (a - d) * 1000 }')
	bs=$(awk -v a="$(report_med select1-1 pgbouncer 7)" -v d="$dd" \
		'BEGIN { if (a == "-" || d == "-") print "-"; else printf "%.1f", (a - d) * 1000 }')
	ok=0
	report_le "$ds" "$(awk -v b="$bs" 'BEGIN { if (b == "-") print "-"; else print 0.75 * b }')" \
		|| ok=1
	report_target_line "One client SELECT 1: added round trip <= 0.75x PgBouncer's" "$ok" \
		"direct $(report_fmt "$dd" 1 1000) µs; pgsluice +$ds µs, PgBouncer +$bs µs"

	s=$(report_idle_bytes pgsluice)
	b=$(report_idle_bytes pgbouncer)
	ok=0
	report_le "$s" "$b" || ok=1
	report_target_line "Idle clients: memory per client <= PgBouncer's" "$ok" \
		"pgsluice $s bytes, PgBouncer $b bytes per idle client"

	local p16 e16 dp16
	p16=$(report_med sel-prep-16 pgsluice 5)
	e16=$(report_med sel-ext-16 pgsluice 5)
	dp16=$(report_med sel-prep-16 direct 5)
	ok=0
	report_le "$e16" "$p16" || ok=1
	report_le "$(awk -v d="$dp16" 'BEGIN { if (d == "-") print "-"; else print 0.9 * d }')" \
		"$p16" || ok=1
	report_target_line "-M prepared at 16 clients >= pgsluice's -M extended and >= 0.9x direct -M prepared" \
		"$ok" "prepared $(report_fmt "$p16" 0), extended $(report_fmt "$e16" 0), direct prepared $(report_fmt "$dp16" 0) TPS"

	local bo di
	bo=$(report_med insert-64 pgsluice-batch 5)
	di=$(report_med insert-64 direct 5)
	r=$(report_ratio "$bo" "$di")
	ok=0
	report_le 5 "$r" || ok=1
	local why=""
	[[ "$BATCH_AVAILABLE" == 1 ]] || why=", batch_inserts not available in this build"
	report_target_line "Batching: single-row INSERTs from 64 clients >= 5x direct" "$ok" \
		"batch_inserts on $(report_fmt "$bo" 0) vs direct $(report_fmt "$di" 0) TPS = ${r}x$why"
}

# Writes the chart's data: per cell, pgsluice's and PgBouncer's TPS ratio to direct
# (routing on for the replica cell; "NaN" where there is no figure).
report_chart_data() {
	local cell s b d sl
	for cell in "${CELL_IDS[@]}"; do
		sl=pgsluice
		[[ "$cell" == reads-16 ]] && sl=pgsluice-routing
		d=$(report_med "$cell" direct 5)
		s=$(report_ratio "$(report_med "$cell" "$sl" 5)" "$d" 3)
		b=$(report_ratio "$(report_med "$cell" pgbouncer 5)" "$d" 3)
		printf '%s\t%s\t%s\n' "$cell" "${s/#-/NaN}" "${b/#-/NaN}"
	done
}
