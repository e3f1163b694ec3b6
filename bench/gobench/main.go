// gobench: a benchmark driver built on the official Go client (nats.go v1.22.1, as Debian
// packages it), with the semantics of natscli's `nats bench` core pub/sub run: N publishers
// split the messages among them, M subscribers each expect every message (or, in a queue
// group, the group together expects them all), subscribers are ready before any publisher
// starts. Like natscli (and nats.go's examples/nats-bench) every subscription is an async
// (callback) subscription with SetPendingLimits(-1, -1), so the client never drops on its
// side: whatever is lost was lost by the server.
//
// Unlike natscli it does not wait forever for a lost message: once the publishers are done
// it waits while the subscribers still make progress (-idle without any progress ends the
// wait, -wait bounds it), and then fails loudly (exit status 1) with the count of every
// subscriber and every asynchronous event (slow consumer, disconnect, reconnect, close).
//
// Built offline in GOPATH mode (bench/gobench/build.sh):
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o /tmp/gobench ./bench/gobench
//
// The last line of the output is machine-readable (bench/helper.py parse-go reads it):
//
//	GOBENCH_RESULT status=ok|FAILED pub_rate=N sub_rate=N lat_p50_us=F lat_p99_us=F ...
//
// Extra modes used by bench/fault.sh: -rate (bounded publishing), -duration (publish for a
// time instead of a count), -series (counts every 100 ms), -watch-pid (server RSS samples),
// -kill-pid/-kill-after (kill -9 of a server mid-run; a subscriber that lost its server is
// then allowed to miss what was published while it was away, and its time to resume on a
// survivor is reported).
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io/ioutil"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/bench"
)

var (
	urls        = flag.String("s", nats.DefaultURL, "server URL(s), comma separated, for every client unless -pub-url/-sub-url")
	pubURL      = flag.String("pub-url", "", "server URL(s) for the publishers (default -s)")
	subURL      = flag.String("sub-url", "", "server URL(s) for the subscribers (default -s); several lists separated by ';' are given to subscribers in turn")
	subject     = flag.String("subject", "bench.go", "subject")
	numPubs     = flag.Int("np", 1, "number of publishers (requesters with -request)")
	numSubs     = flag.Int("ns", 0, "number of subscribers (repliers with -request)")
	numMsgs     = flag.Int("n", 100000, "messages (split among the publishers); ignored with -duration")
	msgSize     = flag.Int("ms", 128, "message size in bytes (>= 8 carries a timestamp for latency)")
	queue       = flag.String("queue", "", "queue group of the subscribers (the group together expects every message)")
	request     = flag.Bool("request", false, "request/reply: publishers send requests (nc.Request) and wait for each reply, subscribers reply")
	reqTimeout  = flag.Duration("req-timeout", time.Second, "request timeout (natscli uses 1s); a timed out request counts as lost")
	rate        = flag.Float64("rate", 0, "total publish rate in msgs/s over all publishers (0: as fast as possible)")
	duration    = flag.Duration("duration", 0, "publish for this long instead of -n messages")
	idle        = flag.Duration("idle", 10*time.Second, "after the publishers finish, give up once no subscriber made progress for this long")
	maxWait     = flag.Duration("wait", 5*time.Minute, "after the publishers finish, wait at most this long for the subscribers")
	seriesFile  = flag.String("series", "", "write 'unix_ns published sub1 sub2 ...' every -series-every to this file")
	seriesEvery = flag.Duration("series-every", 100*time.Millisecond, "interval of -series")
	watchPids   = flag.String("watch-pid", "", "comma-separated server pids: print their RSS every -watch-every and the peak (VmHWM) at the end")
	watchEvery  = flag.Duration("watch-every", 10*time.Second, "interval of -watch-pid")
	killPid     = flag.Int("kill-pid", 0, "send SIGKILL to this pid -kill-after into the publishing")
	killAfter   = flag.Duration("kill-after", 5*time.Second, "see -kill-pid")
	clientName  = flag.String("name", "gobench", "connection name prefix")
	version     = flag.Bool("version", false, "print the nats.go version and exit")

	// JetStream modes (see jetstream.go).
	jsMode      = flag.String("js", "", "JetStream mode: syncpub (each publish waits for its PubAck), asyncpub (PublishAsync with -window acks in flight, then PublishAsyncComplete) or consume (a durable pull consumer fetches -batch at a time and acks every message)")
	jsStorage   = flag.String("storage", "file", "JetStream: storage of the stream the driver defines (file or memory)")
	jsStream    = flag.String("stream", "benchstream", "JetStream: stream name")
	jsConsumer  = flag.String("consumer", "gobench", "JetStream: durable pull consumer name (consume)")
	jsWindow    = flag.Int("window", 100, "JetStream asyncpub: PubAcks in flight (PublishAsyncMaxPending)")
	jsBatch     = flag.Int("batch", 100, "JetStream consume: messages per Fetch")
	jsTimeout   = flag.Duration("jstimeout", 30*time.Second, "JetStream: API, PubAck and Fetch timeout")
	jsMaxBytes  = flag.Int64("maxbytes", 1<<30, "JetStream: max_bytes of the stream the driver defines")
	jsNoDefine  = flag.Bool("bind", false, "JetStream: use the existing stream, do not define or purge it")
)

// base is the time origin of the timestamps carried in the payloads (monotonic clock).
var base = time.Now()

func since() time.Duration { return time.Since(base) }

// ---------------------------------------------------------------- events

type eventLog struct {
	mu     sync.Mutex
	events []string
}

var events eventLog

func (l *eventLog) add(format string, args ...interface{}) {
	msg := fmt.Sprintf("t=%.3fs %s", since().Seconds(), fmt.Sprintf(format, args...))
	l.mu.Lock()
	l.events = append(l.events, msg)
	l.mu.Unlock()
	fmt.Fprintf(os.Stderr, "!! %s\n", msg)
}

func (l *eventLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

// ---------------------------------------------------------------- clients

type client struct {
	name string
	url  string
	nc   *nats.Conn

	disconnects atomic.Int64
	lastDisc    atomic.Int64 // since(base) of the last disconnect
	reconnectAt atomic.Int64 // since(base) of the last reconnect
}

func connect(name, url string, extra ...nats.Option) (*client, error) {
	c := &client{name: name, url: url}
	opts := []nats.Option{
		nats.Name(name),
		nats.DontRandomize(),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subj := ""
			if s != nil {
				subj = " on " + s.Subject
			}
			events.add("%s: async error%s: %v", name, subj, err)
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if closing.Load() {
				return
			}
			c.disconnects.Add(1)
			c.lastDisc.Store(int64(since()))
			events.add("%s: disconnected: %v (last error: %v)", name, err, nc.LastError())
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.reconnectAt.Store(int64(since()))
			events.add("%s: reconnected to %s", name, nc.ConnectedUrl())
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if !closing.Load() {
				events.add("%s: connection closed (last error: %v)", name, nc.LastError())
			}
		}),
	}
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("%s: connecting to %s: %w", name, url, err)
	}
	c.nc = nc
	return c, nil
}

var closing atomic.Bool

// ---------------------------------------------------------------- subscribers

type subscriber struct {
	*client
	idx      int
	sub      *nats.Subscription
	count    atomic.Int64
	firstNs  atomic.Int64
	lastNs   atomic.Int64
	probed   atomic.Bool
	stride   int64 // every stride-th message's latency is kept
	timed    bool  // the publishers run in this process (their timestamps share its clock)
	latMu    sync.Mutex
	lat      []int64
	resumeNs atomic.Int64 // first message after the last disconnect (since base)
}

func (s *subscriber) onMsg(m *nats.Msg) {
	now := int64(since())
	n := s.count.Add(1)
	if n == 1 {
		s.firstNs.Store(now)
	}
	s.lastNs.Store(now)
	if d := s.lastDisc.Load(); d != 0 && s.resumeNs.Load() < d {
		s.resumeNs.Store(now)
	}
	if s.timed && len(m.Data) >= 8 && n%s.stride == 0 {
		sent := int64(binary.LittleEndian.Uint64(m.Data))
		if sent > 0 && sent <= now {
			s.latMu.Lock()
			s.lat = append(s.lat, now-sent)
			s.latMu.Unlock()
		}
	}
}

func (s *subscriber) latencies() []int64 {
	s.latMu.Lock()
	defer s.latMu.Unlock()
	return append([]int64(nil), s.lat...)
}

// probeSubject: each subscriber also subscribes to its own probe subject after the bench
// subject; once a probe published by the publishers' connection arrives, the interest in the
// bench subject has reached the publishers' server too (a route delivers RS+ in order).
func probeSubject(runID string, i int) string { return fmt.Sprintf("_GOBENCH.probe.%s.%d", runID, i) }

// ---------------------------------------------------------------- helpers

func percentile(sorted []int64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return float64(sorted[i])
}

func fmtUs(ns float64) string {
	if math.IsNaN(ns) {
		return ""
	}
	return strconv.FormatFloat(ns/1000, 'f', 1, 64)
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func vmStatus(pid int, key string) int64 {
	data, err := ioutil.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, key+":") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				return v
			}
		}
	}
	return -1
}

func parsePids(s string) []int {
	var pids []int
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		v, err := strconv.Atoi(p)
		if err != nil {
			fatal("bad pid %q in -watch-pid", p)
		}
		pids = append(pids, v)
	}
	return pids
}

func fatal(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "gobench: "+format+"\n", args...)
	fmt.Printf("GOBENCH_RESULT status=FAILED error=%q\n", fmt.Sprintf(format, args...))
	os.Exit(1)
}

// ---------------------------------------------------------------- main

func main() {
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: gobench [flags]\n\nA nats bench-like driver with the official Go client (nats.go %s).\n\n", nats.Version)
		flag.PrintDefaults()
	}
	flag.Parse()
	if *version {
		fmt.Printf("nats.go v%s\n", nats.Version)
		return
	}
	if flag.NArg() > 0 {
		*subject = flag.Arg(0)
	}
	if *numPubs < 0 || *numSubs < 0 || (*numPubs == 0 && *numSubs == 0) {
		fatal("need at least one publisher or subscriber")
	}
	if *duration == 0 && *numMsgs <= 0 {
		fatal("-n must be positive")
	}
	if *msgSize < 0 {
		fatal("-ms must not be negative")
	}
	if *pubURL == "" {
		*pubURL = *urls
	}
	if *subURL == "" {
		*subURL = *urls
	}
	subURLs := strings.Split(*subURL, ";")
	if *jsMode != "" {
		os.Exit(runJetStream())
	}
	if *request {
		os.Exit(runRequest(subURLs))
	}
	os.Exit(runPubSub(subURLs))
}

func runPubSub(subURLs []string) int {
	runID := nats.NewInbox()[len(nats.InboxPrefix):]
	mode := fmt.Sprintf("msgs=%s", commas(int64(*numMsgs)))
	if *duration > 0 {
		mode = fmt.Sprintf("duration=%s", *duration)
	}
	if *rate > 0 {
		mode += fmt.Sprintf(", rate=%s msgs/s", commas(int64(*rate)))
	}
	fmt.Printf("gobench (nats.go %s): subject=%s, %s, size=%d, pubs=%d, subs=%d, queue=%q, pub-url=%s, sub-url=%s\n",
		nats.Version, *subject, mode, *msgSize, *numPubs, *numSubs, *queue, *pubURL, *subURL)

	// Latency: keep about 200k samples per subscriber at most.
	stride := int64(1)
	if *duration == 0 && *numMsgs > 200000 {
		stride = int64(*numMsgs / 200000)
	} else if *duration > 0 {
		stride = 64
	}

	// Subscribers first, each on its own connection.
	subs := make([]*subscriber, 0, *numSubs)
	for i := 0; i < *numSubs; i++ {
		url := strings.TrimSpace(subURLs[i%len(subURLs)])
		c, err := connect(fmt.Sprintf("%s-sub-%d", *clientName, i+1), url)
		if err != nil {
			fatal("%v", err)
		}
		defer c.nc.Close()
		s := &subscriber{client: c, idx: i + 1, stride: stride, timed: *numPubs > 0}
		if *queue != "" {
			s.sub, err = c.nc.QueueSubscribe(*subject, *queue, s.onMsg)
		} else {
			s.sub, err = c.nc.Subscribe(*subject, s.onMsg)
		}
		if err != nil {
			fatal("%s: subscribe: %v", c.name, err)
		}
		// As natscli does: no client-side pending limits, so the client never drops.
		if err := s.sub.SetPendingLimits(-1, -1); err != nil {
			fatal("%s: SetPendingLimits: %v", c.name, err)
		}
		ps, err := c.nc.Subscribe(probeSubject(runID, i), func(*nats.Msg) { s.probed.Store(true) })
		if err != nil {
			fatal("%s: probe subscribe: %v", c.name, err)
		}
		_ = ps
		if err := c.nc.Flush(); err != nil {
			fatal("%s: flush: %v", c.name, err)
		}
		subs = append(subs, s)
	}

	// Publishers: connect all.
	pubs := make([]*client, 0, *numPubs)
	for i := 0; i < *numPubs; i++ {
		c, err := connect(fmt.Sprintf("%s-pub-%d", *clientName, i+1), *pubURL)
		if err != nil {
			fatal("%v", err)
		}
		defer c.nc.Close()
		pubs = append(pubs, c)
	}

	// Wait until every subscriber's interest has reached the publishers' server.
	if len(pubs) > 0 && len(subs) > 0 {
		deadline := time.Now().Add(30 * time.Second)
		for {
			missing := 0
			for i, s := range subs {
				if !s.probed.Load() {
					missing++
					pubs[0].nc.Publish(probeSubject(runID, i), nil)
				}
			}
			if missing == 0 {
				break
			}
			pubs[0].nc.Flush()
			if time.Now().After(deadline) {
				fatal("the interest of %d subscriber(s) did not reach the publishers' server within 30s", missing)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	bm := bench.NewBenchmark("NATS", len(subs), len(pubs))
	var published atomic.Int64
	var pubErrors atomic.Int64

	// Side jobs: series, RSS samples, kill.
	stopSide := make(chan struct{})
	var sideWG sync.WaitGroup
	if *seriesFile != "" {
		f, err := os.Create(*seriesFile)
		if err != nil {
			fatal("%v", err)
		}
		w := bufio.NewWriter(f)
		sideWG.Add(1)
		go func() {
			defer sideWG.Done()
			defer f.Close()
			t := time.NewTicker(*seriesEvery)
			defer t.Stop()
			write := func() {
				fmt.Fprintf(w, "%d %d", time.Now().UnixNano(), published.Load())
				for _, s := range subs {
					fmt.Fprintf(w, " %d", s.count.Load())
				}
				fmt.Fprintln(w)
			}
			write()
			for {
				select {
				case <-t.C:
					write()
				case <-stopSide:
					write()
					w.Flush()
					return
				}
			}
		}()
	}
	pids := parsePids(*watchPids)
	if len(pids) > 0 {
		sideWG.Add(1)
		go func() {
			defer sideWG.Done()
			t := time.NewTicker(*watchEvery)
			defer t.Stop()
			t0 := time.Now()
			sample := func() {
				for _, p := range pids {
					fmt.Printf("RSS t=%.1fs pid=%d rss_kb=%d published=%d\n", time.Since(t0).Seconds(), p, vmStatus(p, "VmRSS"), published.Load())
				}
			}
			sample()
			for {
				select {
				case <-t.C:
					sample()
				case <-stopSide:
					return
				}
			}
		}()
	}
	var killNs atomic.Int64
	pubStartWall := time.Now()

	// Publish.
	shares := bench.MsgsPerClient(*numMsgs, len(pubs))
	var pubWG sync.WaitGroup
	startGate := make(chan struct{})
	for i, c := range pubs {
		pubWG.Add(1)
		go func(i int, c *client) {
			defer pubWG.Done()
			payload := make([]byte, *msgSize)
			share := 0
			if *duration == 0 {
				share = shares[i]
			}
			perPubRate := *rate / float64(len(pubs))
			<-startGate
			start := time.Now()
			var end time.Time
			deadline := start.Add(*duration)
			n := 0
			for ; *duration > 0 || n < share; n++ {
				if *duration > 0 && n%256 == 0 && time.Now().After(deadline) {
					break
				}
				if perPubRate > 0 {
					for float64(n) >= perPubRate*time.Since(start).Seconds() {
						time.Sleep(time.Millisecond)
					}
				}
				if len(payload) >= 8 {
					binary.LittleEndian.PutUint64(payload, uint64(since()))
				}
				if err := c.nc.Publish(*subject, payload); err != nil {
					pubErrors.Add(1)
					events.add("%s: publish #%d failed: %v", c.name, n+1, err)
					if errors.Is(err, nats.ErrConnectionClosed) {
						break
					}
					n--
					time.Sleep(10 * time.Millisecond)
					continue
				}
				published.Add(1)
			}
			if err := c.nc.FlushTimeout(60 * time.Second); err != nil {
				events.add("%s: final flush failed: %v", c.name, err)
				pubErrors.Add(1)
			}
			end = time.Now()
			bm.AddPubSample(bench.NewSample(n, *msgSize, start, end, c.nc))
		}(i, c)
	}
	if *killPid > 0 {
		sideWG.Add(1)
		go func() {
			defer sideWG.Done()
			select {
			case <-time.After(*killAfter):
			case <-stopSide:
				return
			}
			killNs.Store(int64(since()))
			err := syscall.Kill(*killPid, syscall.SIGKILL)
			events.add("kill -9 %d (published so far: %d): %v", *killPid, published.Load(), err)
		}()
	}
	close(startGate)
	pubWG.Wait()
	pubEndWall := time.Now()
	total := published.Load()

	// Wait for the subscribers.
	expected := total
	if *duration == 0 {
		expected = int64(*numMsgs)
	}
	// With -kill-pid a subscriber that lost its server cannot have everything: it does not
	// hold up the wait (whether it resumed is checked below).
	lossy := func(s *subscriber) bool { return *killPid > 0 && s.disconnects.Load() > 0 }
	complete := func() bool {
		var sum int64
		for _, s := range subs {
			c := s.count.Load()
			sum += c
			if *queue == "" && c < expected && !lossy(s) {
				return false
			}
		}
		return *queue == "" || sum >= expected
	}
	waitStart := time.Now()
	lastSum, lastProgress := int64(-1), time.Now()
	timedOut := ""
	for len(subs) > 0 && len(pubs) > 0 && !complete() {
		var sum int64
		for _, s := range subs {
			sum += s.count.Load()
		}
		if sum != lastSum {
			lastSum, lastProgress = sum, time.Now()
		} else if time.Since(lastProgress) > *idle {
			timedOut = fmt.Sprintf("no subscriber made progress for %s after the publishers finished", *idle)
			break
		}
		if time.Since(waitStart) > *maxWait {
			timedOut = fmt.Sprintf("subscribers not complete %s after the publishers finished", *maxWait)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(pubs) == 0 {
		// Subscribe-only run: wait until -n messages (each, or as a group) or idle.
		for !complete() {
			var sum int64
			for _, s := range subs {
				sum += s.count.Load()
			}
			if sum != lastSum {
				lastSum, lastProgress = sum, time.Now()
			} else if sum > 0 && time.Since(lastProgress) > *idle {
				timedOut = fmt.Sprintf("no progress for %s", *idle)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if *killPid > 0 && timedOut == "" {
		time.Sleep(500 * time.Millisecond) // the ones that lost their server may still be catching up
	}
	drainEnd := time.Now()
	close(stopSide)
	sideWG.Wait()

	// Results.
	counts := make([]int64, len(subs))
	connected := make([]string, len(subs))
	var lats []int64
	var sum int64
	for i, s := range subs {
		counts[i] = s.count.Load()
		connected[i] = s.nc.ConnectedUrl()
		sum += counts[i]
		lats = append(lats, s.latencies()...)
		if counts[i] > 0 {
			first := base.Add(time.Duration(s.firstNs.Load()))
			last := base.Add(time.Duration(s.lastNs.Load()))
			if !last.After(first) {
				last = first.Add(time.Nanosecond)
			}
			bm.AddSubSample(bench.NewSample(int(counts[i]), *msgSize, first, last, s.nc))
		}
	}
	closing.Store(true)
	for _, s := range subs {
		s.nc.Close()
	}
	for _, p := range pubs {
		p.nc.Close()
	}
	bm.Close()
	sort.Slice(lats, func(a, b int) bool { return lats[a] < lats[b] })
	p50, p90, p99 := percentile(lats, 50), percentile(lats, 90), percentile(lats, 99)
	maxLat := math.NaN()
	if len(lats) > 0 {
		maxLat = float64(lats[len(lats)-1])
	}

	fmt.Println()
	fmt.Print(bm.Report())
	fmt.Println()
	if len(lats) > 0 {
		fmt.Printf("Latency publish to receive (%d samples): p50 %sµs | p90 %sµs | p99 %sµs | max %sµs\n\n",
			len(lats), fmtUs(p50), fmtUs(p90), fmtUs(p99), fmtUs(maxLat))
	}

	// Verdict: every subscriber must have every message; in a queue group the group must.
	// With -kill-pid a subscriber that lost its server may miss what was published while
	// it was away; it must still resume.
	var failures []string
	if pubErrors.Load() > 0 {
		failures = append(failures, fmt.Sprintf("%d publish error(s)", pubErrors.Load()))
	}
	for i, s := range subs {
		c := counts[i]
		tag := ""
		switch {
		case *queue != "":
			tag = fmt.Sprintf("(queue group member, %.1f%%)", 100*float64(c)/math.Max(1, float64(expected)))
		case c == expected:
			tag = "ok"
		case c > expected:
			tag = fmt.Sprintf("DUPLICATES: %d more than published", c-expected)
			failures = append(failures, fmt.Sprintf("subscriber %d received %s of %s", i+1, commas(c), commas(expected)))
		case lossy(s):
			tag = fmt.Sprintf("missed %s while its server was gone (allowed)", commas(expected-c))
		default:
			tag = fmt.Sprintf("LOST %s", commas(expected-c))
			failures = append(failures, fmt.Sprintf("subscriber %d received only %s of %s", i+1, commas(c), commas(expected)))
		}
		fmt.Printf("Subscriber %d (%s, connected to %s): received %s of %s %s; disconnects %d\n",
			i+1, s.url, connected[i], commas(c), commas(expected), tag, s.disconnects.Load())
	}
	if *queue != "" && len(pubs) > 0 {
		if sum != expected {
			failures = append(failures, fmt.Sprintf("queue group %s received %s of %s", *queue, commas(sum), commas(expected)))
		}
		fmt.Printf("Queue group %s: received %s of %s\n", *queue, commas(sum), commas(expected))
	}
	resume := ""
	if k := killNs.Load(); k > 0 {
		for i, s := range subs {
			if s.disconnects.Load() == 0 {
				continue
			}
			r := s.resumeNs.Load()
			if r == 0 || r < k {
				failures = append(failures, fmt.Sprintf("subscriber %d lost its server and never received a message again", i+1))
				resume += fmt.Sprintf("%d:never,", i+1)
				fmt.Printf("Subscriber %d: lost its server at the kill and did NOT resume\n", i+1)
				continue
			}
			rc := s.reconnectAt.Load()
			fmt.Printf("Subscriber %d: resumed %.1f ms after the kill (reconnected after %.1f ms, to %s)\n",
				i+1, float64(r-k)/1e6, float64(rc-k)/1e6, connected[i])
			resume += fmt.Sprintf("%d:%.1f,", i+1, float64(r-k)/1e6)
		}
	}
	if timedOut != "" && len(failures) == 0 {
		failures = append(failures, timedOut)
	}
	if len(pids) > 0 {
		for _, p := range pids {
			fmt.Printf("RSS pid=%d final_kb=%d peak_kb=%d\n", p, vmStatus(p, "VmRSS"), vmStatus(p, "VmHWM"))
		}
	}
	evs := events.all()
	if len(evs) > 0 {
		fmt.Printf("Asynchronous events (%d):\n", len(evs))
		for _, e := range evs {
			fmt.Printf("  %s\n", e)
		}
	}
	status := "ok"
	if len(failures) > 0 {
		status = "FAILED"
		fmt.Printf("\n!!!!!!!! FAILED: %s\n", strings.Join(failures, "; "))
		if timedOut != "" {
			fmt.Printf("!!!!!!!! (%s)\n", timedOut)
		}
		fmt.Fprintf(os.Stderr, "gobench: FAILED: %s\n", strings.Join(failures, "; "))
	}
	countStrs := make([]string, len(counts))
	for i, c := range counts {
		countStrs[i] = strconv.FormatInt(c, 10)
	}
	peaks := make([]string, 0, len(pids))
	for _, p := range pids {
		peaks = append(peaks, fmt.Sprintf("%d:%d", p, vmStatus(p, "VmHWM")))
	}
	var subRate, pubRate int64
	if bm.Subs.HasSamples() {
		subRate = bm.Subs.Rate()
	}
	if bm.Pubs.HasSamples() {
		pubRate = bm.Pubs.Rate()
	}
	fmt.Printf("GOBENCH_RESULT status=%s mode=pubsub pub_rate=%d sub_rate=%d lat_p50_us=%s lat_p99_us=%s published=%d expected=%d sub_counts=%s lost=%d events=%d pub_start_ns=%d pub_end_ns=%d drain_s=%.3f kill_ns=%d resume_ms=%s rss_peak_kb=%s\n",
		status, pubRate, subRate, fmtUs(p50), fmtUs(p99), total, expected, strings.Join(countStrs, ","),
		lostCount(counts, expected, subs, lossy), len(evs), pubStartWall.UnixNano(), pubEndWall.UnixNano(),
		drainEnd.Sub(pubEndWall).Seconds(), killWall(killNs.Load()), strings.TrimSuffix(resume, ","), strings.Join(peaks, ","))
	if status != "ok" {
		return 1
	}
	return 0
}

func killWall(k int64) int64 {
	if k == 0 {
		return 0
	}
	return base.Add(time.Duration(k)).UnixNano()
}

func lostCount(counts []int64, expected int64, subs []*subscriber, lossy func(*subscriber) bool) int64 {
	if *queue != "" {
		var sum int64
		for _, c := range counts {
			sum += c
		}
		if sum < expected {
			return expected - sum
		}
		return 0
	}
	var lost int64
	for i, c := range counts {
		if c < expected && !lossy(subs[i]) {
			lost += expected - c
		}
	}
	return lost
}

// ---------------------------------------------------------------- request/reply

func runRequest(subURLs []string) int {
	fmt.Printf("gobench (nats.go %s): request/reply, subject=%s, requests=%s, size=%d, requesters=%d, repliers=%d, pub-url=%s, sub-url=%s\n",
		nats.Version, *subject, commas(int64(*numMsgs)), *msgSize, *numPubs, *numSubs, *pubURL, *subURL)
	if *numPubs == 0 || *numSubs == 0 {
		fatal("request/reply needs -np >= 1 and -ns >= 1")
	}
	reply := []byte("ok")
	var replied atomic.Int64
	for i := 0; i < *numSubs; i++ {
		url := strings.TrimSpace(subURLs[i%len(subURLs)])
		c, err := connect(fmt.Sprintf("%s-replier-%d", *clientName, i+1), url)
		if err != nil {
			fatal("%v", err)
		}
		defer c.nc.Close()
		sub, err := c.nc.QueueSubscribe(*subject, "bench-reply", func(m *nats.Msg) {
			if err := m.Respond(reply); err == nil {
				replied.Add(1)
			}
		})
		if err != nil {
			fatal("%s: subscribe: %v", c.name, err)
		}
		if err := sub.SetPendingLimits(-1, -1); err != nil {
			fatal("%s: SetPendingLimits: %v", c.name, err)
		}
		if err := c.nc.Flush(); err != nil {
			fatal("%s: flush: %v", c.name, err)
		}
	}
	pubs := make([]*client, 0, *numPubs)
	for i := 0; i < *numPubs; i++ {
		c, err := connect(fmt.Sprintf("%s-requester-%d", *clientName, i+1), *pubURL)
		if err != nil {
			fatal("%v", err)
		}
		defer c.nc.Close()
		pubs = append(pubs, c)
	}
	// Wait for the repliers' interest at the requesters' server (a request with no
	// responders fails at once in nats.go when the server supports headers).
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := pubs[0].nc.Request(*subject, make([]byte, *msgSize), *reqTimeout)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			fatal("no replier reachable from %s within 30s: %v", *pubURL, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	replied.Store(0)

	bm := bench.NewBenchmark("NATS", 0, len(pubs))
	shares := bench.MsgsPerClient(*numMsgs, len(pubs))
	var mu sync.Mutex
	var lats []int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i, c := range pubs {
		wg.Add(1)
		go func(share int, c *client) {
			defer wg.Done()
			payload := make([]byte, *msgSize)
			local := make([]int64, 0, share)
			<-gate
			start := time.Now()
			ok := 0
			for n := 0; n < share; n++ {
				t0 := time.Now()
				m, err := c.nc.Request(*subject, payload, *reqTimeout)
				if err != nil || len(m.Data) == 0 {
					if failed.Add(1) <= 10 {
						events.add("%s: request #%d failed: %v", c.name, n+1, err)
					}
					if errors.Is(err, nats.ErrConnectionClosed) {
						break
					}
					continue
				}
				local = append(local, int64(time.Since(t0)))
				ok++
			}
			bm.AddPubSample(bench.NewSample(ok, *msgSize, start, time.Now(), c.nc))
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}(shares[i], c)
	}
	close(gate)
	wg.Wait()
	closing.Store(true)
	bm.Close()
	sort.Slice(lats, func(a, b int) bool { return lats[a] < lats[b] })
	p50, p90, p99 := percentile(lats, 50), percentile(lats, 90), percentile(lats, 99)
	fmt.Println()
	fmt.Print(bm.Report())
	fmt.Println()
	if len(lats) > 0 {
		fmt.Printf("Request latency (%d requests): p50 %sµs | p90 %sµs | p99 %sµs | max %sµs\n\n",
			len(lats), fmtUs(p50), fmtUs(p90), fmtUs(p99), fmtUs(float64(lats[len(lats)-1])))
	}
	evs := events.all()
	if len(evs) > 0 {
		fmt.Printf("Asynchronous events (%d):\n", len(evs))
		for _, e := range evs {
			fmt.Printf("  %s\n", e)
		}
	}
	status := "ok"
	if f := failed.Load(); f > 0 {
		status = "FAILED"
		fmt.Printf("\n!!!!!!!! FAILED: %s of %s requests got no reply within %s\n", commas(f), commas(int64(*numMsgs)), *reqTimeout)
		fmt.Fprintf(os.Stderr, "gobench: FAILED: %d requests got no reply\n", f)
	}
	var pubRate int64
	if bm.Pubs.HasSamples() {
		pubRate = bm.Pubs.Rate()
	}
	fmt.Printf("GOBENCH_RESULT status=%s mode=reqrep pub_rate=%d sub_rate= lat_p50_us=%s lat_p99_us=%s published=%d expected=%d sub_counts=%d lost=%d events=%d\n",
		status, pubRate, fmtUs(p50), fmtUs(p99), len(lats), *numMsgs, replied.Load(), failed.Load(), len(evs))
	if status != "ok" {
		return 1
	}
	return 0
}
