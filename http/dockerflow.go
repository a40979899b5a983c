package http

import (
	"context"
	"encoding/json"
	"net/http"
)

// The operational endpoints follow Mozilla's Dockerflow conventions, which
// both reference servers implement and their deployment tooling expects.

func (s *Server) opsMethod(rq *request) bool {
	if rq.r.Method == http.MethodGet || rq.r.Method == http.MethodHead {
		return true
	}
	s.writeError(rq, methodNotAllowed("GET, HEAD"))
	return false
}

// GET /__heartbeat__: the node and its database. 503 when the database does
// not answer within HeartbeatTimeout, or while draining.
func (s *Server) heartbeat(rq *request) {
	if !s.opsMethod(rq) {
		return
	}
	ctx, cancel := context.WithTimeout(rq.r.Context(), s.hbTimeout)
	defer cancel()
	status, db := "ok", "ok"
	code := http.StatusOK
	if err := s.store.Ping(ctx); err != nil {
		status, db, code = "error", "error", http.StatusServiceUnavailable
		rq.errReason = "database ping: " + err.Error()
	}
	if s.draining.Load() {
		status, code = "draining", http.StatusServiceUnavailable
	}
	body, _ := json.Marshal(map[string]string{"status": status, "database": db})
	writeJSON(rq, code, body)
}

// GET /__lbheartbeat__: cheap liveness for load balancers; 503 while
// draining so they stop sending new requests before shutdown.
func (s *Server) lbHeartbeat(rq *request) {
	if !s.opsMethod(rq) {
		return
	}
	if s.draining.Load() {
		writeJSON(rq, http.StatusServiceUnavailable, []byte(`{"status":"draining"}`))
		return
	}
	writeJSON(rq, http.StatusOK, []byte("{}"))
}

// GET /__version__.
func (s *Server) versionInfo(rq *request) {
	if !s.opsMethod(rq) {
		return
	}
	body, _ := json.Marshal(map[string]string{
		"source":  "https://github.com/weave-sync/weave",
		"version": s.version,
		"commit":  s.commit,
	})
	writeJSON(rq, http.StatusOK, body)
}

// GET /: a sign of life for people poking at the URL.
func (s *Server) root(rq *request) {
	if !s.opsMethod(rq) {
		return
	}
	h := rq.w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	rq.w.WriteHeader(http.StatusOK)
	rq.w.Write([]byte("It works! This is a weave Firefox Sync storage node.\n"))
}
