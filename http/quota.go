package http

import (
	"github.com/weave-sync/weave"
)

// quotaWarnBytes: below this much room left, writes report
// X-Weave-Quota-Remaining (as the Python server does).
const quotaWarnBytes = 1 << 20

// writePre is the precondition of a write that adds payload: the client's
// X-If-Unmodified-Since and, when quotas are on (Limits.QuotaBytes above 0),
// the user's quota, which the store enforces inside the write. Its refusal,
// an *weave.OverQuotaError, is answered 400 with body 14, the only form
// Firefox recognises as over-quota (storage-1.5.md §13, §18 #2).
func (s *Server) writePre(rq *request) weave.Precondition {
	pre := rq.pre.store()
	if s.limits.QuotaBytes > 0 {
		pre.Quota = &weave.Quota{Bytes: s.limits.QuotaBytes}
	}
	return pre
}

// checkQuota refuses, as the store would, a write of nothing by a user
// with no room left, and sets the room left for reportQuota.
func (s *Server) checkQuota(rq *request, q *weave.Quota) error {
	if q == nil {
		return nil
	}
	used, err := s.store.Usage(rq.r.Context(), rq.uid)
	if err != nil {
		return err
	}
	q.Left = q.Bytes - used
	if q.Left <= 0 {
		return &weave.OverQuotaError{Left: q.Left}
	}
	return nil
}

// reportQuota adds X-Weave-Quota-Remaining to a successful write of a
// quota when less than 1 MiB is left.
func reportQuota(rq *request, q *weave.Quota) {
	if q != nil && q.Left < quotaWarnBytes {
		rq.w.Header().Set("X-Weave-Quota-Remaining", formatKB(q.Left))
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
