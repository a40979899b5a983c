package http

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// CORS for web clients of the storage and token routes, off unless origins
// are configured, modelled on syncstorage-rs (methods DELETE, GET, POST,
// PUT; its allowed request headers; max age 20 days). Unlike it, weave also
// allows the conditional and key headers the protocol defines as request
// headers, and exposes the protocol's response headers so that scripts can
// read them. Credentials (cookies) are never involved: both APIs
// authenticate with the Authorization header.
var (
	corsMethods = "DELETE, GET, POST, PUT"
	corsHeaders = strings.Join([]string{
		// syncstorage-rs's list.
		"Authorization", "Content-Type", "User-Agent", "X-Last-Modified", "X-Weave-Timestamp",
		"X-Weave-Next-Offset", "X-Weave-Records", "X-Weave-Bytes", "X-Weave-Total-Records",
		"X-Weave-Total-Bytes", "X-Verify-Code",
		// Request headers of storage 1.5 and token server 1.0.
		"X-If-Modified-Since", "X-If-Unmodified-Since", "X-KeyID", "X-Client-State",
	}, ", ")
	corsExpose = strings.Join([]string{
		"X-Last-Modified", "X-Weave-Timestamp", "X-Weave-Next-Offset", "X-Weave-Records",
		"X-Weave-Quota-Remaining", "X-Weave-Backoff", "X-Weave-Alert", "X-Backoff",
		"X-Timestamp", "Retry-After",
	}, ", ")
	corsMaxAge = strconv.Itoa(1728000)
)

// cors is the allowed origins: any when anyOrigin, else the listed ones.
type cors struct {
	anyOrigin bool
	origins   []string // normalised: lower-case scheme://host[:port]
}

// newCORS validates origins ("*", or scheme://host[:port] without a path).
// No origin means CORS is off (nil).
func newCORS(origins []string) (*cors, error) {
	var c cors
	for _, o := range origins {
		o = strings.TrimSpace(o)
		switch {
		case o == "":
			continue
		case o == "*":
			c.anyOrigin = true
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("http: CORS origin %q must be * or scheme://host[:port], e.g. https://app.example.com", o)
		}
		c.origins = append(c.origins, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	if !c.anyOrigin && len(c.origins) == 0 {
		return nil, nil
	}
	return &c, nil
}

// handle adds the CORS headers for an allowed Origin and answers a
// preflight, reporting whether it did (then the request is over).
func (c *cors) handle(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	h := w.Header()
	if !c.anyOrigin {
		h.Add("Vary", "Origin")
		if !slices.Contains(c.origins, strings.ToLower(origin)) {
			return false
		}
		h.Set("Access-Control-Allow-Origin", origin)
	} else {
		h.Set("Access-Control-Allow-Origin", "*")
	}
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", corsMethods)
		h.Set("Access-Control-Allow-Headers", corsHeaders)
		h.Set("Access-Control-Max-Age", corsMaxAge)
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return true
	}
	h.Set("Access-Control-Expose-Headers", corsExpose)
	return false
}
