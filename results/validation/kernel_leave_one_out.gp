set terminal svg size 800,640 dynamic background rgb 'white'
set output 'kernel_leave_one_out.svg'
set title 'Kernel times: each calibration row predicted from the others (leave-one-out)'
set logscale xy
set xlabel 'measured (us)'
set ylabel 'predicted (us)'
set key top left
set grid
$gpu0 << EOD
9.407 6.86055
16.72 12.2366
9.806 6.63107
44.74 35.6438
13.09 9.05766
6.37 4.69512
11.01 14.3229
18.06 27.2363
12 16.6254
46.61 70.8968
14.1 20.3428
7.369 10.3514
117.2 139.264
312.4 213.71
232.9 136.644
708.4 625.41
184.4 183.256
117.3 89.414
1484 1578.07
875.4 795.762
1494 1678.63
880.2 898.581
48.77 59.5389
32.5 30.9129
57.82 54.5094
32.82 32.4394
64.52 60.6737
36.89 40.5819
EOD
plot x with lines lc rgb 'black' title 'predicted = measured', \
     $gpu0 using 1:2 with points pt 7 title 'h800-sxm'
