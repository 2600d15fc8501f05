// franz-go against ferrolog: produce and consume with every codec, idempotent by default.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var passed int

func check(ok bool, format string, args ...any) {
	if !ok {
		fmt.Printf("FAILED: "+format+"\n", args...)
		os.Exit(1)
	}
	passed++
}

func main() {
	bootstrap := os.Args[1]
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	admin, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	check(err == nil, "admin client: %v", err)
	adm := kadm.NewClient(admin)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		topic := fmt.Sprintf("franz-%s-%d", name, time.Now().UnixNano())
		resp, err := adm.CreateTopics(ctx, 2, 1, nil, topic)
		check(err == nil && resp[topic].Err == nil, "create %s: %v %v", topic, err, resp[topic].Err)
		p, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic))
		check(err == nil, "producer: %v", err)
		var records []*kgo.Record
		for i := 0; i < 300; i++ {
			records = append(records, &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i)),
				Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("x")}}})
		}
		results := p.ProduceSync(ctx, records...)
		check(results.FirstErr() == nil, "%s produce: %v", name, results.FirstErr())
		p.Close()
		c, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		check(err == nil, "consumer: %v", err)
		seen := map[string]bool{}
		deadline := time.Now().Add(20 * time.Second)
		for len(seen) < 300 && time.Now().Before(deadline) {
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			fetches := c.PollFetches(pctx)
			pcancel()
			fetches.EachRecord(func(r *kgo.Record) {
				check(string(r.Value) == "v"+string(r.Key)[1:], "%s: pair %s %s", name, r.Key, r.Value)
				check(len(r.Headers) == 1 && string(r.Headers[0].Value) == "x", "%s: header", name)
				seen[string(r.Value)] = true
			})
		}
		c.Close()
		check(len(seen) == 300, "%s: consumed %d of 300", name, len(seen))
	}
	groupConsumer(ctx, bootstrap, adm)
	admin.Close()
	fmt.Printf("%d passed, 0 failed\n", passed)
}

// groupConsumer: a franz-go consumer group reads a topic, commits, and the committed offsets are
// visible through the admin API; a second run of the group reads nothing new.
func groupConsumer(ctx context.Context, bootstrap string, adm *kadm.Client) {
	topic := fmt.Sprintf("franz-group-%d", time.Now().UnixNano())
	group := topic + "-g"
	resp, err := adm.CreateTopics(ctx, 3, 1, nil, topic)
	check(err == nil && resp[topic].Err == nil, "create %s: %v", topic, err)
	p, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic))
	check(err == nil, "producer: %v", err)
	var records []*kgo.Record
	for i := 0; i < 60; i++ {
		records = append(records, &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	check(p.ProduceSync(ctx, records...).FirstErr() == nil, "group produce")
	p.Close()
	consume := func(wait time.Duration) int {
		c, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		check(err == nil, "group consumer: %v", err)
		defer c.Close()
		seen := 0
		deadline := time.Now().Add(wait)
		for seen < 60 && time.Now().Before(deadline) {
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			fetches := c.PollFetches(pctx)
			pcancel()
			seen += fetches.NumRecords()
		}
		check(c.CommitUncommittedOffsets(ctx) == nil, "commit")
		return seen
	}
	check(consume(15*time.Second) == 60, "group read all 60")
	offsets, err := adm.FetchOffsets(ctx, group)
	check(err == nil, "fetch offsets: %v", err)
	total := int64(0)
	offsets.Each(func(o kadm.OffsetResponse) { total += o.At })
	check(total == 60, "committed offsets sum to 60, got %d", total)
	check(consume(3*time.Second) == 0, "nothing re-read after the commit")
}
