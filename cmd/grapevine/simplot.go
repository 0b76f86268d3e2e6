package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/plot"
	"github.com/grapevine-mesh/grapevine/internal/sim"
)

// criticalDegree is the mean degree at which 2D continuum percolation (a
// random geometric graph) gets a giant component: about 4.51.
const criticalDegree = 4.512

// writePlots draws the charts of a run or a sweep and returns the files.
//
//   - delivery: the share of messages delivered within a time of being
//     sent (up to their TTL), one line per run
//     (at most eight: a longer sweep shows every few points);
//   - for a sweep, sweep: delivery ratio against the swept setting, with
//     the giant component, the share of pairs connected at the start and
//     the share within the hop limit;
//     for nodes and range the x axis is the mean degree they produced,
//     with the percolation threshold marked;
//   - for a sweep, cost: transmissions per delivered message.
func writePlots(dir, sweepName string, labels []string, rs []*sim.Result) ([]string, error) {
	var files []string
	write := func(c *plot.Chart, name string) error {
		if err := c.Write(dir, name); err != nil {
			return fmt.Errorf("failed to write chart %s: %w", name, err)
		}
		files = append(files, filepath.Join(dir, name+".svg"), filepath.Join(dir, name+".png"))
		return nil
	}
	if err := write(deliveryChart(sweepName, labels, rs), "delivery"); err != nil {
		return nil, err
	}
	if sweepName == "" {
		if err := write(hopsChart(rs[0]), "hops"); err != nil {
			return nil, err
		}
		return files, nil
	}
	x, xLabel, marks := sweepAxis(sweepName, labels, rs)
	ratio := func(f func(*sim.Result) float64) []float64 {
		out := make([]float64, len(rs))
		for i, r := range rs {
			out[i] = f(r)
		}
		return out
	}
	sweep := &plot.Chart{
		Title:  fmt.Sprintf("Delivery: %s", describe(rs[0], sweepName)),
		XLabel: xLabel, YLabel: "share", Percent: true, Marks: marks,
		Series: []plot.Series{
			{Name: "messages delivered", X: x, Y: ratio(func(r *sim.Result) float64 { return r.DeliveryRatio })},
			{Name: "pairs connected at start", X: x, Y: ratio(func(r *sim.Result) float64 { return r.PairsConnected }), Dashed: true},
			{Name: "pairs within the hop limit", X: x, Y: ratio(func(r *sim.Result) float64 { return r.PairsWithinHops }), Dashed: true},
			{Name: "giant component", X: x, Y: ratio(func(r *sim.Result) float64 { return r.GiantComponent }), Dashed: true},
		},
	}
	if err := write(sweep, "sweep"); err != nil {
		return nil, err
	}
	cost := &plot.Chart{
		Title:  fmt.Sprintf("Cost: %s", describe(rs[0], sweepName)),
		XLabel: xLabel, YLabel: "envelope transmissions per delivered message", Marks: marks,
		Series: []plot.Series{
			{Name: "transmissions per delivered", X: x, Y: ratio(func(r *sim.Result) float64 { return r.TransmissionsPerDelivered })},
		},
	}
	if err := write(cost, "cost"); err != nil {
		return nil, err
	}
	return files, nil
}

func deliveryChart(sweepName string, labels []string, rs []*sim.Result) *plot.Chart {
	c := &plot.Chart{Title: "Delivered within a time of sending: " + describe(rs[0], sweepName),
		XLabel: "minutes since sent", YLabel: "messages delivered", Percent: true}
	step := (len(rs) + 7) / 8
	for i := 0; i < len(rs); i += step {
		s := plot.Series{Name: "delivered"}
		if labels != nil {
			s.Name = labels[i]
		}
		for _, p := range rs[i].Timeline {
			s.X = append(s.X, p.Seconds/60)
			s.Y = append(s.Y, p.Delivered)
		}
		c.Series = append(c.Series, s)
	}
	return c
}

// hopsChart splits one run's delivery curve by the number of links the
// delivered copy crossed: how much of what arrives is direct, and how long
// each extra hop takes.
func hopsChart(r *sim.Result) *plot.Chart {
	c := &plot.Chart{Title: "By links crossed: " + describe(r, ""),
		XLabel: "minutes since sent", YLabel: "messages delivered", Percent: true}
	for g, name := range []string{"1 link", "2 links", "3 links", "4 or more"} {
		s := plot.Series{Name: name}
		for _, p := range r.TimelineByHops[g] {
			s.X = append(s.X, p.Seconds/60)
			s.Y = append(s.Y, p.Delivered)
		}
		c.Series = append(c.Series, s)
	}
	all := plot.Series{Name: "all", Dashed: true}
	for _, p := range r.Timeline {
		all.X = append(all.X, p.Seconds/60)
		all.Y = append(all.Y, p.Delivered)
	}
	c.Series = append(c.Series, all)
	return c
}

// sweepAxis is the x axis of sweep charts: the mean degree for sweeps of
// node count or range (what percolation depends on), else the setting.
func sweepAxis(name string, labels []string, rs []*sim.Result) ([]float64, string, []plot.Mark) {
	x := make([]float64, len(rs))
	if name == "nodes" || name == "range" {
		for i, r := range rs {
			x[i] = r.MeanDegree
		}
		return x, "mean degree (neighbours in range)", []plot.Mark{{X: criticalDegree, Label: "percolation threshold 4.51"}}
	}
	for i, l := range labels {
		v := strings.TrimPrefix(l, name+"=")
		if name == "routing" { // epidemic as 0 copies, spray:L as L
			c, _ := node.ParseRouting(v)
			x[i] = float64(c)
			continue
		}
		x[i], _ = strconv.ParseFloat(v, 64)
	}
	if name == "routing" {
		return x, "spray-and-wait copies L (0 = epidemic)", nil
	}
	return x, name, nil
}

// describe sums up the scenario for a chart title (short: titles are one
// line), leaving out the setting that varies.
func describe(r *sim.Result, varies string) string {
	var parts []string
	if varies != "nodes" {
		parts = append(parts, fmt.Sprintf("%d nodes", r.Nodes))
	}
	if varies != "range" {
		parts = append(parts, fmt.Sprintf("%g m range", r.Range))
	}
	parts = append(parts, r.Mobility)
	if varies != "routing" {
		parts = append(parts, r.Routing)
	}
	return strings.Join(parts, ", ")
}
