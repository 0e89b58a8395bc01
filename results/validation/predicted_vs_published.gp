# Predicted against published for each predicted row of the validation set; written by `clustersim validate`.
# Draw it with `gnuplot predicted_vs_published.gp` in this folder (writes predicted_vs_published.svg).
set terminal svg size 760,760 font 'sans,12' noenhanced background rgb 'white'
set output 'predicted_vs_published.svg'
set title 'clustersim validate: predicted against published (each row in its own unit)'
set xlabel 'published'
set ylabel 'predicted'
set logscale xy
set size square
set grid
set xrange [1.757:2.549e+05]
set yrange [1.757:2.549e+05]
set key top left box opaque
set samples 200
set xtics (2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000)
set ytics (2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000)
# id published predicted accepted_low accepted_high label_side
$rows << EOD
T1a 1543 1871.22 1388.7 1697.3 1
T1b 19.93 16.4171 17.937 21.923 -1
T1c 38.9 47.3634 35.01 42.79 1
T2a 129 102.127 116.1 141.9 -1
T2b 96.3 72.9668 91.3 101.3 1
T2c 3.77624 3.04264 2.635 5.29 -1
T2d 6.14003 4.11988 4.93 7.475 1
T3a 408.8 627.619 367.92 449.68 -1
T3b 419.7 445.319 377.73 461.67 1
T3c 459.9 499.046 413.91 505.89 -1
N1a 153 179.127 137.7 168.3 1
N1b 158 180.101 142.2 173.8 -1
N1c 43 54.7726 38.7 47.3 1
N1d 58 61.0261 52.2 63.8 -1
N1e 51 52.8235 45.9 56.1 1
N2a 77 50.2746 65.45 88.55 -1
N2b 173 157.161 147.05 198.95 1
N2c 194 172.708 164.9 223.1 -1
N2d 114 91.0632 96.9 131.1 1
N2e 314 290.092 266.9 361.1 -1
N2f 360 342.338 306 414 1
S1a 73700 169928 62645 84755 -1
S1b 14800 27165.4 12580 17020 1
S1c 20.9762 151.089 17 25.3 -1
EOD
$pass << EOD
T2c 3.77624 3.04264 2.635 5.29 -1
T3b 419.7 445.319 377.73 461.67 1
T3c 459.9 499.046 413.91 505.89 -1
N1d 58 61.0261 52.2 63.8 -1
N1e 51 52.8235 45.9 56.1 1
N2b 173 157.161 147.05 198.95 1
N2c 194 172.708 164.9 223.1 -1
N2e 314 290.092 266.9 361.1 -1
N2f 360 342.338 306 414 1
EOD
$fail << EOD
T1a 1543 1871.22 1388.7 1697.3 1
T1b 19.93 16.4171 17.937 21.923 -1
T1c 38.9 47.3634 35.01 42.79 1
T2a 129 102.127 116.1 141.9 -1
T2b 96.3 72.9668 91.3 101.3 1
T2d 6.14003 4.11988 4.93 7.475 1
T3a 408.8 627.619 367.92 449.68 -1
N1a 153 179.127 137.7 168.3 1
N1b 158 180.101 142.2 173.8 -1
N1c 43 54.7726 38.7 47.3 1
N2a 77 50.2746 65.45 88.55 -1
N2d 114 91.0632 96.9 131.1 1
S1a 73700 169928 62645 84755 -1
S1b 14800 27165.4 12580 17020 1
S1c 20.9762 151.089 17 25.3 -1
EOD
plot x with lines lc rgb 'black' lw 1.5 title 'predicted = published', \
     x*1.1 with lines dt 2 lc rgb '#777777' title '+/- 10%', \
     x*0.9 with lines dt 2 lc rgb '#777777' notitle, \
     x*1.15 with lines dt 3 lc rgb '#777777' title '+/- 15%', \
     x*0.85 with lines dt 3 lc rgb '#777777' notitle, \
     $rows using 2:2:4:5 with yerrorbars pt 0 lc rgb '#9ecae1' lw 2 title 'accepted interval', \
     $pass using 2:3 with points pt 7 ps 1.3 lc rgb '#1a9850' title 'pass', \
     $fail using 2:3 with points pt 5 ps 1.3 lc rgb '#d73027' title 'fail', \
     $rows using 2:($3*(1+0.05*$6)):1 with labels left offset 1,0 notitle
