package http

import (
	"net/http"

	"github.com/weave-sync/weave"
)

// quotaWarnBytes: below this much room left, writes report
// X-Weave-Quota-Remaining (as the Python server does).
const quotaWarnBytes = 1 << 20

// quotaState carries the pre-write estimate of the room left.
type quotaState struct {
	on   bool
	left int64 // quota − usage − new payload bytes
}

// checkQuota refuses a write whose new payload bytes would leave no room:
// left = quota − used − new ≤ 0 gives 400 with body 14, the only form
// Firefox recognises as over-quota (storage-1.5.md §13, §18 #2). Quotas are
// off when Limits.QuotaBytes is 0.
func (s *Server) checkQuota(rq *request, newBytes int64) (quotaState, error) {
	if s.limits.QuotaBytes <= 0 {
		return quotaState{}, nil
	}
	used, err := s.store.Usage(rq.r.Context(), rq.uid)
	if err != nil {
		return quotaState{}, err
	}
	left := s.limits.QuotaBytes - used - newBytes
	if left <= 0 {
		return quotaState{}, &apiError{status: http.StatusBadRequest, code: codeOverQuota,
			reason: "over quota", quotaRemaining: &left}
	}
	return quotaState{on: true, left: left}, nil
}

// reportQuota adds X-Weave-Quota-Remaining to a successful write when less
// than 1 MiB is left. The pre-write estimate overstates usage when records
// were replaced, so near the limit the figure is measured again.
func (s *Server) reportQuota(rq *request, q quotaState) {
	if !q.on || q.left >= quotaWarnBytes {
		return
	}
	left := q.left
	if used, err := s.store.Usage(rq.r.Context(), rq.uid); err == nil {
		left = s.limits.QuotaBytes - used
	}
	if left < quotaWarnBytes {
		rq.w.Header().Set("X-Weave-Quota-Remaining", formatKB(left))
	}
}

// payloadBytes sums the payload bytes that updates write.
func payloadBytes(us []weave.Update) int64 {
	var n int64
	for i := range us {
		n += int64(len(us[i].Payload.Value))
	}
	return n
}
