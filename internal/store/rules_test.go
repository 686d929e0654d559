package store

import "testing"

func TestPageTotal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		offset, rows  int
		more          bool
		counted, want int
	}{
		// The count agrees with the page: it stands.
		{"Agrees", 10, 10, true, 25, 25},
		{"AgreesPastTheEnd", 100, 0, false, 25, 25},
		// A count from before rows were added is below the page and its
		// next row: the page sets the least total.
		{"CountBehindMore", 30, 10, true, 37, 41},
		{"CountBehindLast", 30, 9, false, 37, 39},
		// A count that still holds rows gone since: the page that ends
		// the list has the exact total, an empty one no more than offset.
		{"CountAheadLast", 30, 5, false, 40, 35},
		{"CountAheadEmpty", 30, 0, false, 40, 30},
		{"CountAheadFirst", 0, 0, false, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := PageTotal(tt.offset, tt.rows, tt.more, tt.counted)
			if got != tt.want {
				t.Errorf("PageTotal(%d, %d, %v, %d) = %d, want %d", tt.offset, tt.rows, tt.more, tt.counted, got, tt.want)
			}
			if hasMore := tt.offset+tt.rows < got; hasMore != tt.more {
				t.Errorf("offset+rows < total is %v, want %v (more rows follow)", hasMore, tt.more)
			}
		})
	}
}
