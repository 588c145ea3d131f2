// franztxn drives a franz-go transactional producer against a broker for
// tests/compat/test_franz_go.py: two transactions (commit, abort), a zombie
// fenced by a second producer with the same transactional id, and a
// read_committed read of everything. It prints one line per step:
//
//	STEP <name> OK|ERR <detail>
//	SEEN <comma-separated values>   (what read_committed returned)
//	RESULT OK | RESULT FAIL <why>
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func producer(seed, topic, tid string) (*kgo.Client, error) {
	return kgo.NewClient(
		kgo.SeedBrokers(seed),
		kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID(tid),
		kgo.TransactionTimeout(60*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
}

// txn runs one transaction writing tag-<p>-<i> to every partition, then
// commits or aborts it.
func txn(ctx context.Context, cl *kgo.Client, topic, tag string, partitions int, commit bool) error {
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	var recs []*kgo.Record
	for p := 0; p < partitions; p++ {
		for i := 0; i < 3; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(p), Value: []byte(fmt.Sprintf("%s-%d-%d", tag, p, i))})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	end := kgo.TryAbort
	if commit {
		end = kgo.TryCommit
	}
	if err := cl.EndTransaction(ctx, end); err != nil {
		return fmt.Errorf("end: %w", err)
	}
	return nil
}

func readCommitted(ctx context.Context, seed, topic string) ([]string, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(seed),
		kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var seen []string
	idle := 0
	for idle < 3 {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			seen = append(seen, string(r.Value))
			n++
		})
		if n == 0 {
			idle++
		} else {
			idle = 0
		}
	}
	sort.Strings(seen)
	return seen, nil
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: franztxn BOOTSTRAP TOPIC PARTITIONS TRANSACTIONAL_ID")
		os.Exit(2)
	}
	seed, topic, tid := os.Args[1], os.Args[2], os.Args[4]
	var partitions int
	fmt.Sscan(os.Args[3], &partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	fail := func(why string, err error) {
		fmt.Printf("RESULT FAIL %s: %v\n", why, err)
		os.Exit(1)
	}

	zombie, err := producer(seed, topic, tid)
	if err != nil {
		fail("client", err)
	}
	defer zombie.Close()
	if err := txn(ctx, zombie, topic, "c1", partitions, true); err != nil {
		fail("commit c1", err)
	}
	fmt.Println("STEP commit OK")
	if err := txn(ctx, zombie, topic, "a", partitions, false); err != nil {
		fail("abort a", err)
	}
	fmt.Println("STEP abort OK")

	// The zombie starts a transaction; a second producer with the same
	// transactional id fences it (its InitProducerId aborts it).
	if err := zombie.BeginTransaction(); err != nil {
		fail("zombie begin", err)
	}
	var z []*kgo.Record
	for p := 0; p < partitions; p++ {
		z = append(z, &kgo.Record{Topic: topic, Partition: int32(p), Value: []byte(fmt.Sprintf("zombie-%d", p))})
	}
	if err := zombie.ProduceSync(ctx, z...).FirstErr(); err != nil {
		fail("zombie produce", err)
	}
	fresh, err := producer(seed, topic, tid)
	if err != nil {
		fail("client", err)
	}
	defer fresh.Close()
	if err := txn(ctx, fresh, topic, "c2", partitions, true); err != nil {
		fail("commit c2", err)
	}
	fmt.Println("STEP fresh-commit OK")
	zerr := zombie.EndTransaction(ctx, kgo.TryCommit)
	fenced := errors.Is(zerr, kerr.ProducerFenced) || errors.Is(zerr, kerr.InvalidProducerEpoch) ||
		errors.Is(zerr, kerr.InvalidProducerIDMapping) || errors.Is(zerr, kerr.TransactionAbortable)
	if zerr == nil || !fenced {
		fail("zombie commit was not fenced", zerr)
	}
	fmt.Printf("STEP zombie-fenced OK %v\n", zerr)

	seen, err := readCommitted(ctx, seed, topic)
	if err != nil {
		fail("read_committed", err)
	}
	fmt.Printf("SEEN %s\n", strings.Join(seen, ","))
	fmt.Println("RESULT OK")
}
