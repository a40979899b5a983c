package accounts

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// The sign-up and sign-in pages: what FxA's content server is to Firefox,
// for weave's own accounts. Firefox opens them under
// identity.fxaccounts.remote.root, which autoconfig sets to the URL the
// user gave as identity.fxaccounts.autoconfig.uri, i.e. this weave's
// public URL. The sign-in link is the root itself
// (FxAccountsConfig.promiseConnectAccountURI builds new URL("", root)
// with context=oauth_webchannel_v1, the OAuth parameters and keys_jwk);
// the other paths are the ones Firefox and FxA links use. Everything the
// pages need is embedded: plain HTML, CSS and JavaScript, no build step,
// nothing loaded from elsewhere. The password never leaves the page: it
// derives authPW and unwrapBKey with WebCrypto (web/onepw.js mirrors
// package onepw), unwraps kB, and hands Firefox the scoped keys encrypted
// to the key Firefox passed in keys_jwk.

//go:embed web
var webFiles embed.FS

// pageViews are the page paths and what each shows: "auth" is the sign-in
// and sign-up page, "settings" the account page behind Firefox's "Manage
// account" (devices and sessions, password, deletion; web/settings.js),
// "info" a short note (pairing and the like are not in the browser).
var pageViews = map[string]string{
	"/": "auth", "/signin": "auth", "/signup": "auth", "/force_auth": "auth",
	"/oauth": "auth", "/oauth/signin": "auth", "/oauth/signup": "auth", "/authorization": "auth",
	"/settings": "settings", "/connect_another_device": "info", "/pair": "info",
}

// assetPrefix is where the embedded files are served.
const assetPrefix = "/_accounts/"

type asset struct {
	body  []byte
	ctype string
	etag  string
}

type pages struct {
	tmpl    *template.Template
	assets  map[string]asset
	version string // changes with any asset, for cache busting
}

func loadPages() (*pages, error) {
	p := &pages{assets: map[string]asset{}}
	sum := sha256.New()
	err := fs.WalkDir(webFiles, "web", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := webFiles.ReadFile(name)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		sum.Write(h[:])
		base := path.Base(name)
		if base == "index.html" {
			p.tmpl, err = template.New(base).Parse(string(b))
			return err
		}
		ct := mime.TypeByExtension(path.Ext(base))
		if ct == "" {
			ct = "application/octet-stream"
		}
		p.assets[base] = asset{body: b, ctype: ct, etag: `"` + hex.EncodeToString(h[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.version = hex.EncodeToString(sum.Sum(nil)[:6])
	return p, nil
}

// pagePath reports whether path (PublicURL's prefix already stripped) is
// one of the pages' paths.
func pagePath(p string) bool {
	if p == "" {
		return true // the public URL itself when it has a path prefix
	}
	_, ok := pageViews[p]
	return ok || strings.HasPrefix(p, "/settings/") || strings.HasPrefix(p, "/oauth/") ||
		strings.HasPrefix(p, assetPrefix) || p == "/metrics-flow"
}

// pageHeaders lock the pages down: nothing but this origin, no framing
// (the form must not be clickjacked), no Referer carrying the query's
// OAuth parameters elsewhere.
func pageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

func (s *Service) servePage(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "" {
		p = "/"
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		errMethod.write(w)
		return
	}
	pageHeaders(w.Header())
	switch {
	case strings.HasPrefix(p, assetPrefix):
		a, ok := s.pages.assets[strings.TrimPrefix(p, assetPrefix)]
		if !ok {
			errNotFound.write(w)
			return
		}
		w.Header().Set("Content-Type", a.ctype)
		w.Header().Set("ETag", a.etag)
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
		return
	case p == "/metrics-flow":
		// about:welcome fetches flow ids for FxA's metrics; weave keeps
		// none, but a well-formed answer keeps the page quiet.
		writeJSON(w, http.StatusOK, map[string]any{"flowId": randomHex(32), "flowBeginTime": s.nowMS()})
		return
	}
	view := pageViews[p]
	switch {
	case view != "":
	case strings.HasPrefix(p, "/settings/"): // …/clients, Firefox's "Manage devices"
		view = "settings"
	default:
		view = "info" // /oauth/…
	}
	signup := "open"
	switch {
	case s.cfg.SignupClosed:
		signup = "closed"
	case s.cfg.SignupCaptcha:
		signup = "captcha"
	}
	var buf bytes.Buffer
	if err := s.pages.tmpl.Execute(&buf, map[string]string{
		"Prefix": s.prefix, "Base": s.base, "Signup": signup, "View": view, "Version": s.pages.version,
	}); err != nil {
		s.log.Error("accounts: page template", "err", err)
		errUnexpected.write(w)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}
