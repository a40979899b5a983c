package weave

import "time"

// Limits are the server's published and enforced limits
// (GET /info/configuration) plus storage policies.
type Limits struct {
	MaxRequestBytes       int64 `json:"max_request_bytes"`
	MaxPostRecords        int64 `json:"max_post_records"`
	MaxPostBytes          int64 `json:"max_post_bytes"`
	MaxTotalRecords       int64 `json:"max_total_records"`
	MaxTotalBytes         int64 `json:"max_total_bytes"`
	MaxRecordPayloadBytes int64 `json:"max_record_payload_bytes"`

	// QuotaBytes is the per-user storage quota; 0 disables quotas.
	QuotaBytes int64 `json:"-"`
	// BatchLifetime is how long an uncommitted batch stays usable.
	BatchLifetime time.Duration `json:"-"`
}

// DefaultLimits follow the current Mozilla production server.
func DefaultLimits() Limits {
	return Limits{
		MaxRequestBytes:       2_625_536,
		MaxPostRecords:        100,
		MaxPostBytes:          2_621_440,
		MaxTotalRecords:       10_000,
		MaxTotalBytes:         262_144_000,
		MaxRecordPayloadBytes: 2_621_440,
		BatchLifetime:         2 * time.Hour,
	}
}
