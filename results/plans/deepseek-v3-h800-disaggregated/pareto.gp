# pareto.gp: written by clustersim. Redraw with `gnuplot pareto.gp` in this folder (reads pareto.dat, writes pareto.svg).
set terminal svg size 960,640 dynamic noenhanced font 'sans,12' background rgb 'white'
set output 'pareto.svg'
set title 'deepseek-v3-h800-disaggregated: plans meeting the objectives at 1606 requests/s'
set xlabel 'output tokens/s per user (decoding request)'
set ylabel 'tokens/s per GPU (input + output)'
set grid
set key outside right top vertical
set datafile separator '\t'
set offsets graph 0.05, graph 0.2, graph 0.08, graph 0.08
set label 1 'best: plan 5875' at 78.25925901277218, 9281.690340553667 left offset 0.8,0.5 font ',10' front
plot 'pareto.dat' index 0 using 1:2 with points pt 7 ps 0.8 title 'disaggregated', \
     '' index 1 using 1:2 with linespoints pt 7 ps 1 lw 2 title 'Pareto front'
