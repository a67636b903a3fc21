# chart.gp - the PNG beside each bench/results table: per cell, the TPS of pgsluice and
# of PgBouncer as a ratio to a direct connection (1.0 = as fast as no pooler).
# bench/run calls: gnuplot -e "datafile='D'; outfile='O'; subtitle='S'" bench/chart.gp
# D holds one line per cell: "cell" <tab> pgsluice ratio <tab> PgBouncer ratio (NaN = none).

set terminal pngcairo size 1200,600 noenhanced font "sans,10"
set output outfile
set title "TPS relative to a direct connection\n" . subtitle
set datafile separator "\t"
set datafile missing "NaN"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
# Connection churn is tens of times faster pooled: a log scale keeps the other cells legible.
set logscale y 2
set yrange [0.0625:*]
set ylabel "ratio to direct (log scale)"
set grid ytics
set xtics rotate by -30 left
set key top left
set arrow from graph 0, first 1 to graph 1, first 1 nohead dashtype 2 lc rgb "#555555"
plot datafile using 2:xtic(1) title "pgsluice" lc rgb "#2a7ab9", \
     '' using 3 title "PgBouncer" lc rgb "#c0504d"
