"""Surface pictures: contour, 3-D and 1-D curves (render), the Tables 7-8 panels and GIFs (panels), and the off-screen
render child process (offscreen)."""
