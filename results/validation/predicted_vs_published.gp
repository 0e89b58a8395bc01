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
set xrange [25.8:621]
set yrange [25.8:621]
set key top left box opaque
set samples 200
set xtics (50, 100, 200, 500)
set ytics (50, 100, 200, 500)
# id published predicted accepted_low accepted_high label_side
$rows << EOD
N1a 153 180.471 137.7 168.3 1
N1b 158 180.799 142.2 173.8 -1
N1c 43 55.1057 38.7 47.3 1
N1d 58 61.2536 52.2 63.8 -1
N1e 51 52.9932 45.9 56.1 1
N2a 77 46.9446 65.45 88.55 -1
N2b 173 151.031 147.05 198.95 1
N2c 194 166.829 164.9 223.1 -1
N2d 114 87.7332 96.9 131.1 1
N2e 314 283.962 266.9 361.1 -1
N2f 360 336.277 306 414 1
EOD
$pass << EOD
N1d 58 61.2536 52.2 63.8 -1
N1e 51 52.9932 45.9 56.1 1
N2b 173 151.031 147.05 198.95 1
N2c 194 166.829 164.9 223.1 -1
N2e 314 283.962 266.9 361.1 -1
N2f 360 336.277 306 414 1
EOD
$fail << EOD
N1a 153 180.471 137.7 168.3 1
N1b 158 180.799 142.2 173.8 -1
N1c 43 55.1057 38.7 47.3 1
N2a 77 46.9446 65.45 88.55 -1
N2d 114 87.7332 96.9 131.1 1
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
