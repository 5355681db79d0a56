package web

import (
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/certmint/certmint/internal/quickstart"
)

type dashboardData struct {
	Accounts, Valid, Expiring7, Expiring30, Revoked, Total int64
	Overdue                                                int64 // lineages past their renewal window
	Issued, Expiry                                         chart
	DirectoryURL, Fingerprint, FingerprintColons           string
	RootSubject                                            string
	ExpiryDays                                             int // span of the expiry timeline
	// The "Connect a client" card: where the root is and the commands
	// that get a first certificate from this server.
	RootFile, RootCommand, RootURL string
	HTTP01Port                     int
	Commands                       []quickstart.Command
}

// chart is a bar chart laid out in Go and drawn by the template as inline
// SVG: no script and no image requests.
type chart struct {
	Width, Height, Base float64
	LabelY              float64 // baseline of the tick labels
	Bars                []bar
	Ticks               []tick
	Max, Sum            int64
}

type bar struct {
	X, Y, W, H float64
	Day        string
	N          int64
	Class      string
}

type tick struct {
	X      float64
	Label  string
	Anchor string // SVG text-anchor, so edge labels stay inside
}

// The chart's frame, in SVG units. The tick labels' baseline sits well
// above the bottom edge: an SVG clips what overflows it, and a baseline
// on the edge itself cut the labels' lower part off (issue 24).
const (
	chartDays   = 30
	chartWidth  = 600.0
	chartHeight = 150.0
	chartBase   = 128.0 // y of the x axis; labels below it
	chartLabelY = 142.0 // 10-unit labels: 14 below the axis, 8 above the edge
	edgeLabel   = 24.0  // a tick this close to the right edge ends there
)

// dayChart lays out one bar per UTC day from start, days long.
func dayChart(start time.Time, days int, counts map[string]int64, class func(i int) string) chart {
	c := chart{Width: chartWidth, Height: chartHeight, Base: chartBase, LabelY: chartLabelY}
	tickEvery := max(7, (days/6+6)/7*7) // about six labels, on whole weeks
	for _, n := range counts {
		c.Max = max(c.Max, n)
	}
	slot := chartWidth / float64(days)
	for i := range days {
		day := start.AddDate(0, 0, i).Format("2006-01-02")
		n := counts[day]
		c.Sum += n
		h := 0.0
		if c.Max > 0 {
			h = (chartBase - 8) * float64(n) / float64(c.Max)
		}
		if n > 0 && h < 2 {
			h = 2
		}
		gap := min(2, slot/4)
		c.Bars = append(c.Bars, bar{X: float64(i)*slot + gap, Y: chartBase - h, W: slot - 2*gap, H: h, Day: day, N: n, Class: class(i)})
		if i%tickEvery == 0 {
			t := tick{X: float64(i)*slot + slot/2, Label: start.AddDate(0, 0, i).Format("Jan 2"), Anchor: "middle"}
			switch {
			case i == 0:
				t.X, t.Anchor = 0, "start"
			case t.X > chartWidth-edgeLabel:
				t.X, t.Anchor = chartWidth, "end"
			}
			c.Ticks = append(c.Ticks, t)
		}
	}
	return c
}

func (s *server) dashboard(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	now := s.now().UTC()
	d := dashboardData{DirectoryURL: s.cfg.ACMEDirectoryURL, Fingerprint: s.cfg.CA.RootFingerprint(),
		RootSubject: s.cfg.CA.Root().Subject.CommonName}
	d.FingerprintColons = colonHex(d.Fingerprint)
	d.RootFile, d.HTTP01Port = s.cfg.RootFile, s.cfg.HTTP01Port
	d.RootCommand = quickstart.RootCommand(filepath.Dir(filepath.Dir(d.RootFile)))
	d.RootURL = strings.TrimSuffix(d.DirectoryURL, "/acme/directory") + "/roots/root.pem"
	d.Commands = quickstart.Commands(quickstart.Server{DirectoryURL: d.DirectoryURL, RootFile: d.RootFile, HTTP01Port: d.HTTP01Port})
	var err error
	if d.Accounts, err = s.store.CountAccounts(ctx); err != nil {
		return err
	}
	if d.Overdue, err = s.store.CountOverdue(ctx, now); err != nil {
		return err
	}
	st, err := s.store.CertificateStats(ctx, now)
	if err != nil {
		return err
	}
	d.Total, d.Valid, d.Expiring7, d.Expiring30, d.Revoked = st.Total, st.Valid, st.Expiring7, st.Expiring30, st.Revoked
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	issuedFrom := today.AddDate(0, 0, -(chartDays - 1))
	issued, err := s.store.IssuedPerDay(ctx, issuedFrom)
	if err != nil {
		return err
	}
	d.Issued = dayChart(issuedFrom, chartDays, issued, func(int) string { return "bar" })
	// The expiry timeline spans the longest lifetime a certificate can
	// have, so every valid certificate is on it (90-day ones too).
	d.ExpiryDays = chartDays
	if lv := s.cfg.LongestValidity; lv > chartDays*24*time.Hour {
		d.ExpiryDays = min(int((lv+24*time.Hour-1)/(24*time.Hour))+1, 400)
	}
	expiring, err := s.store.ExpiringPerDay(ctx, today, today.AddDate(0, 0, d.ExpiryDays))
	if err != nil {
		return err
	}
	d.Expiry = dayChart(today, d.ExpiryDays, expiring, func(i int) string {
		switch {
		case i < 7:
			return "bar bar-urgent"
		case i < 14:
			return "bar bar-soon"
		}
		return "bar"
	})
	s.render(w, r, http.StatusOK, "dashboard", "Dashboard", "dashboard", d)
	return nil
}

func (s *server) rootPEM(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="certmint-root.pem"`)
	_, err := w.Write(s.cfg.CA.RootPEM())
	return err
}

// colonHex formats a hex fingerprint as AB:CD:..., the way browsers and
// openssl show it.
func colonHex(h string) string {
	h = strings.ToUpper(h)
	parts := make([]string, 0, len(h)/2)
	for i := 0; i+1 < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}
