package servertest

import (
	"context"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// ServeCut passes r on to target and cuts the answer off after, once
// target has begun to answer: a stream open for a moment, then dropped.
// The reverse proxy ends the cut stream with a panic (http.ErrAbortHandler),
// which the HTTP server takes as an aborted response.
func ServeCut(w http.ResponseWriter, r *http.Request, target *url.URL, after time.Duration) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	cut := httputil.NewSingleHostReverseProxy(target)
	cut.FlushInterval = -1
	cut.ModifyResponse = func(*http.Response) error {
		time.AfterFunc(after, cancel)
		return nil
	}
	cut.ServeHTTP(w, r.WithContext(ctx))
}
