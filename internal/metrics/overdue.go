package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// OverdueCounter counts the certificate lineages past the end of their
// renewal window and not yet expired (storage.InventoryStore).
type OverdueCounter interface {
	CountOverdue(ctx context.Context, now time.Time) (int64, error)
}

var overdueDesc = prometheus.NewDesc("certmint_renewals_overdue",
	"Certificate lineages whose current certificate is past the end of its ARI renewal window, not renewed, not expired and not revoked; from the database, so every replica reports the whole cluster's count.",
	nil, nil)

// overdueCollector counts at each scrape: the count is a range scan of
// an index over the live lineages only (storage/lineage.go), so unlike
// the certificate counts it needs no spacing. A database that does not
// answer leaves the gauge out of that scrape.
type overdueCollector struct {
	src OverdueCounter
	log *slog.Logger
}

func (c *overdueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- overdueDesc }

func (c *overdueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), countTimeout)
	defer cancel()
	n, err := c.src.CountOverdue(ctx, time.Now())
	if err != nil {
		c.log.Warn("metrics: count overdue renewals", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(overdueDesc, prometheus.GaugeValue, float64(n))
}
