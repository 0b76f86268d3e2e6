package plot_test

import (
	"fmt"
	"log"
	"os"

	"github.com/grapevine-mesh/grapevine/internal/plot"
)

func ExampleChart_Write() {
	dir, err := os.MkdirTemp("", "plot-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	c := &plot.Chart{
		Title:   "Delivery ratio vs mean degree",
		XLabel:  "mean degree",
		YLabel:  "delivery ratio",
		Percent: true,
		Series: []plot.Series{
			{Name: "epidemic", X: []float64{1, 2, 4, 8}, Y: []float64{0.05, 0.2, 0.7, 0.98}},
			{Name: "spray-and-wait", X: []float64{1, 2, 4, 8}, Y: []float64{0.03, 0.1, 0.5, 0.9}, Dashed: true},
		},
		Marks: []plot.Mark{{X: 4.51, Label: "critical mean degree 4.51"}},
	}
	if err := c.Write(dir, "delivery"); err != nil {
		log.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	// Output:
	// delivery.png
	// delivery.svg
}
