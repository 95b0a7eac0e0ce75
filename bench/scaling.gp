# Scaling plot of one training step: gnuplot -e "data='scaling.dat'; out='docs/scaling.png'" bench/scaling.gp
# The data file comes from `bench_step --scaling FILE` (four blocks: N, K, G and M sweeps around
# N 500, K 8, G 2, M 128; columns: sweep, value, libdisrnn us, floor us, PyTorch f64 us, f32 us).
if (!exists("data")) data = 'scaling.dat'
if (!exists("out")) out = 'scaling.png'
set terminal pngcairo size 1200,900 font ",10"
set output out
set multiplot layout 2,2 title "One DisRNN training step (1 thread): libdisrnn, its floor and PyTorch"
set logscale xy
set ylabel "microseconds per step"
set grid
set key top left
array T[4] = ["N (channels)", "K (latents, 2 groups)", "G (groups, K = 16)", "M (batch size)"]
do for [b=0:3] {
    set xlabel T[b+1]
    plot data index b using 2:3 with linespoints lw 2 pt 7 title "libdisrnn", \
         data index b using 2:4 with lines dt 2 lw 2 title "floor (flops + exps at peak)", \
         data index b using 2:5 with linespoints pt 6 title "PyTorch float64", \
         data index b using 2:6 with linespoints pt 4 title "PyTorch float32"
}
unset multiplot
