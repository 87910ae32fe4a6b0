package html

import (
	"fmt"
	"html/template"
	"math"
	"strings"

	"github.com/proxyproof/proxyproof/reports/compare"
)

// Chart geometry: wide enough for three modes x four stats with labels,
// small enough that two fit a laptop screen side by side in the bench grid.
const (
	chartW, chartH = 560, 250
	padL, padR     = 56, 16
	padB           = 40
	legendRowH     = 16
)

var palette = map[string]string{
	"iptables": "#2563eb",
	"nftables": "#059669",
	"ipvs":     "#d97706",
}

var spare = []string{"#7c3aed", "#db2777", "#0891b2", "#65a30d", "#dc2626", "#4b5563"}

// colors gives every series a stable color: the known modes their own,
// anything else (bench series, other proxiers) from a spare palette.
type colors struct{ used map[string]string }

func (c *colors) of(name string) string {
	if c.used == nil {
		c.used = map[string]string{}
	}
	if col, ok := c.used[name]; ok {
		return col
	}
	base := name
	if i := strings.IndexAny(base, "/ "); i > 0 {
		base = base[:i]
	}
	col, ok := palette[base]
	if !ok || c.taken(col) {
		col = spare[len(c.used)%len(spare)]
	}
	c.used[name] = col
	return col
}

func (c *colors) taken(col string) bool {
	for _, v := range c.used {
		if v == col {
			return true
		}
	}
	return false
}

// barChart is a grouped bar chart: one group per category (p50, p99, ...),
// one bar per series (mode) in each group, side by side.
type barChart struct {
	ID, Unit string
	Groups   []string
	Series   []string
	Values   [][]float64 // [series][group]; NaN: no bar
	// Marks label a missing bar ([series][group]), e.g. "did not finish":
	// a proxier that never got there is not the same as a short bar.
	Marks      [][]string
	SeriesCols *colors
}

func (c barChart) svg() template.HTML {
	var b strings.Builder
	maxV := 0.0
	for _, row := range c.Values {
		for _, v := range row {
			if !math.IsNaN(v) && v > maxV {
				maxV = v
			}
		}
	}
	top, step := niceScale(maxV)
	padT := legend(&b, c.ID, "bar chart, "+c.Unit, c.Series, c.SeriesCols)
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	y := func(v float64) float64 { return float64(padT) + plotH - v/top*plotH }
	axes(&b, padT, top, step, c.Unit, y)
	groupW := plotW / float64(max(len(c.Groups), 1))
	barW := math.Min(44, groupW*0.8/float64(max(len(c.Series), 1)))
	for g, group := range c.Groups {
		x0 := padL + groupW*float64(g) + (groupW-barW*float64(len(c.Series)))/2
		for s, series := range c.Series {
			v := c.Values[s][g]
			x := x0 + barW*float64(s)
			if math.IsNaN(v) {
				if s < len(c.Marks) && g < len(c.Marks[s]) && c.Marks[s][g] != "" {
					// Written upwards from the axis where the bar would stand.
					fmt.Fprintf(&b, `<text class="val mark" data-series="%s" data-group="%s" transform="translate(%.1f %.1f) rotate(-90)">%s</text>`,
						esc(series), esc(group), x+barW/2+3, float64(padT)+plotH-4, esc(c.Marks[s][g]))
				}
				continue
			}
			h := float64(padT) + plotH - y(v)
			if v > 0 && h < 1 {
				h = 1 // a tiny value stays visible
			}
			fmt.Fprintf(&b, `<rect class="bar" data-series="%s" data-group="%s" data-value="%g" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s %s</title></rect>`,
				esc(series), esc(group), v, x+1, float64(padT)+plotH-h, barW-2, h, c.SeriesCols.of(series), esc(series), esc(group), compare.Num(v), esc(c.Unit))
			// A label wider than its bar would run into the next one.
			if label := short(v); float64(len(label))*5.6 <= barW+2 {
				fmt.Fprintf(&b, `<text class="val" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x+barW/2, float64(padT)+plotH-h-3, label)
			}
		}
		fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>`, padL+groupW*(float64(g)+0.5), chartH-padB+16, esc(group))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// lineChart draws one polyline per series with a dot at every data point.
type lineChart struct {
	ID, Unit, XUnit string
	Series          []string
	Points          [][][2]float64
	SeriesCols      *colors
}

func (c lineChart) svg() template.HTML {
	var b strings.Builder
	maxX, maxY := 0.0, 0.0
	minX := math.Inf(1)
	for _, pts := range c.Points {
		for _, p := range pts {
			maxX, maxY, minX = math.Max(maxX, p[0]), math.Max(maxY, p[1]), math.Min(minX, p[0])
		}
	}
	if math.IsInf(minX, 1) || minX > 0 {
		minX = 0
	}
	topY, stepY := niceScale(maxY)
	topX, stepX := niceScale(maxX - minX)
	padT := legend(&b, c.ID, "line chart, "+c.Unit+" over "+c.XUnit, c.Series, c.SeriesCols)
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	y := func(v float64) float64 { return float64(padT) + plotH - v/topY*plotH }
	x := func(v float64) float64 { return padL + (v-minX)/topX*plotW }
	axes(&b, padT, topY, stepY, c.Unit, y)
	for v := 0.0; v <= topX+stepX/2; v += stepX {
		fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>`, x(minX+v), chartH-padB+16, compare.Num(minX+v))
	}
	fmt.Fprintf(&b, `<text class="axis" x="%d" y="%d" text-anchor="end">%s</text>`, chartW-padR, chartH-6, esc(c.XUnit))
	for s, series := range c.Series {
		col := c.SeriesCols.of(series)
		var coords []string
		for _, p := range c.Points[s] {
			coords = append(coords, fmt.Sprintf("%.1f,%.1f", x(p[0]), y(p[1])))
		}
		fmt.Fprintf(&b, `<polyline class="line" data-series="%s" fill="none" stroke="%s" stroke-width="2" points="%s"/>`, esc(series), col, strings.Join(coords, " "))
		for _, p := range c.Points[s] {
			fmt.Fprintf(&b, `<circle class="point" data-series="%s" data-x="%g" data-value="%g" cx="%.1f" cy="%.1f" r="2.5" fill="%s"><title>%s at %s %s: %s %s</title></circle>`,
				esc(series), p[0], p[1], x(p[0]), y(p[1]), col, esc(series), compare.Num(p[0]), esc(c.XUnit), compare.Num(p[1]), esc(c.Unit))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// axes draws the y grid with its ticks and the unit above them.
func axes(b *strings.Builder, padT int, top, step float64, unit string, y func(float64) float64) {
	for v := 0.0; v <= top+step/2; v += step {
		fmt.Fprintf(b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, padL, chartW-padR, y(v), y(v))
		fmt.Fprintf(b, `<text class="tick" x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-6, y(v)+4, short(v))
	}
	fmt.Fprintf(b, `<text class="axis" x="%d" y="%d">%s</text>`, 4, padT-10, esc(unit))
	fmt.Fprintf(b, `<line class="axisline" x1="%d" x2="%d" y1="%d" y2="%d"/>`, padL, chartW-padR, chartH-padB, chartH-padB)
}

// legend opens the svg and lays the series names out left to right from
// the plot's left edge, wrapping into more rows when they do not fit (bench
// series names are long). It returns the top padding the plot starts at.
func legend(b *strings.Builder, id, label string, series []string, cols *colors) int {
	for _, s := range series {
		cols.of(s) // colors in series order, not drawing order
	}
	type item struct {
		x   float64
		row int
	}
	items := make([]item, len(series))
	x, row := float64(padL), 0
	for i, s := range series {
		w := float64(len(s))*6.4 + 28
		if x+w > chartW-padR && x > padL {
			x, row = padL, row+1
		}
		items[i] = item{x, row}
		x += w
	}
	padT := 8 + (row+1)*legendRowH + 24
	fmt.Fprintf(b, `<svg class="chart" id="%s" role="img" aria-label="%s" viewBox="0 0 %d %d" width="%d" height="%d">`, esc(id), esc(label), chartW, chartH, chartW, chartH)
	for i, s := range series {
		y := 8 + items[i].row*legendRowH
		fmt.Fprintf(b, `<g class="legend"><rect x="%.1f" y="%d" width="12" height="12" rx="2" fill="%s"/><text x="%.1f" y="%d">%s</text></g>`, items[i].x, y, cols.of(s), items[i].x+16, y+10, esc(s))
	}
	return padT
}

// niceScale gives an axis top and step (1, 2, 2.5 or 5 x 10^k) that fit v
// in four to six gridlines.
func niceScale(v float64) (top, step float64) {
	if v <= 0 {
		return 1, 0.25
	}
	raw := v / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		step = m * mag
		if step >= raw {
			break
		}
	}
	top = math.Ceil(v/step) * step
	if top == 0 {
		top = step
	}
	return top, step
}

// short keeps axis ticks and bar labels narrow: 160120 -> 160k.
func short(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return compare.Num(v/1e6) + "M"
	case a >= 1e4:
		return compare.Num(v/1e3) + "k"
	}
	return compare.Num(v)
}

func esc(s string) string { return template.HTMLEscapeString(s) }
