package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// OpenResult streams the stored result of a task as raw JSON bytes (GET
// /v1/tasks/{id}/result), without holding it in memory: use it for large
// results. size is the length in bytes, or -1 when the server did not say.
// The caller closes the reader. A missing task is an error for which
// IsNotFound is true; a task with no result yet is a -32003 error.
func (c *Client) OpenResult(ctx context.Context, taskID string) (rc io.ReadCloser, size int64, err error) {
	err = c.retry(ctx, onFailure, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/tasks/"+url.PathEscape(taskID)+"/result", nil)
		if err != nil {
			return &unsendableError{err}
		}
		resp, err := c.do(req)
		if err != nil {
			return fmt.Errorf("result of %s: %w", taskID, err)
		}
		if resp.StatusCode != http.StatusOK {
			defer resp.Body.Close()
			return statusError(resp)
		}
		rc, size = resp.Body, resp.ContentLength
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return rc, size, nil
}
