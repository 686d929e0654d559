package redispg

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// taskColumnTypes are the PostgreSQL types of taskColumns, in order.
var taskColumnTypes = []string{"text", "text", "text", "text", "integer", "text", "text", "integer",
	"integer", "bigint", "bigint", "bigint", "text", "bigint", "text",
	"integer", "text", "bigint", "bigint", "bigint", "bigint", "bigint"}

// upsertTaskRows writes many task rows in one statement, each by the rule
// of upsertTask (the newest version wins, a tombstone stays): every
// column travels as one text array, unnested into rows. The rows must
// name distinct tasks.
var upsertTaskRows = func() string {
	var params, cols, casts []string
	for i, typ := range taskColumnTypes {
		params = append(params, fmt.Sprintf("$%d::text[]", i+1))
		cols = append(cols, fmt.Sprintf("c%d", i+1))
		casts = append(casts, fmt.Sprintf("c%d::%s", i+1, typ))
	}
	return `INSERT INTO tasks (` + taskColumns + `) SELECT ` + strings.Join(casts, ", ") +
		` FROM unnest(` + strings.Join(params, ", ") + `) AS u(` + strings.Join(cols, ", ") + `) ` + newerWins
}()

// queueTaskRows adds to b the writes of the rows of tasks, which name
// distinct tasks, in one statement.
func queueTaskRows(b *pgx.Batch, tasks []*taskState) error {
	cols := make([][]*string, len(taskColumnTypes))
	for i := range cols {
		cols[i] = make([]*string, len(tasks))
	}
	for r, t := range tasks {
		for i, v := range taskArgs(t) {
			switch v := v.(type) {
			case nil:
			case string:
				cols[i][r] = &v
			case int:
				s := strconv.Itoa(v)
				cols[i][r] = &s
			case int64:
				s := strconv.FormatInt(v, 10)
				cols[i][r] = &s
			default:
				return fmt.Errorf("task row of %s: column %d of type %T", t.ID, i, v)
			}
		}
	}
	args := make([]any, len(cols))
	for i, c := range cols {
		args[i] = c
	}
	b.Queue(upsertTaskRows, args...)
	return nil
}
