// dockerfile-check validates a Dockerfile without a Docker engine, using
// BuildKit's own Dockerfile frontend (the code `docker build` runs):
//
//  1. parse it (syntax, line continuations, heredocs);
//  2. parse every instruction and its flags;
//  3. run BuildKit's lint rules (what `docker build --check` reports);
//  4. convert every stage to LLB, which resolves ARGs in FROM, stage
//     references in COPY --from, and the like.
//
// Base images are not fetched: an offline resolver answers every image with
// an empty linux/amd64 config. Any error or lint warning exits 1.
//
//	go run . ../../Dockerfile
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	digest "github.com/opencontainers/go-digest"
)

// offline stands in for a registry.
type offline struct{}

func (offline) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	cfg := `{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":[]}}`
	return ref, digest.FromString(ref), []byte(cfg), nil
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "dockerfile-check: "+format+"\n", a...)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 2 {
		fail("usage: dockerfile-check DOCKERFILE")
	}
	path := os.Args[1]
	src, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	problems := 0

	f, _ := os.Open(path)
	res, err := parser.Parse(f)
	f.Close()
	if err != nil {
		fail("%s: parse error: %v", path, err)
	}
	for _, w := range res.Warnings {
		fmt.Printf("%s:%d: parser warning: %s\n", path, w.Location.Start.Line, w.Short)
		problems++
	}
	lint := linter.New(&linter.Config{Warn: func(string, string, string, string, []parser.Range) {}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		fail("%s: %v", path, err)
	}
	for _, s := range stages {
		fmt.Printf("stage %-8s FROM %s (%d instructions)\n", s.Name, s.BaseName, len(s.Commands))
	}

	sm := llb.NewSourceMap(nil, path, "Dockerfile", src)
	sm.Definition = &llb.Definition{}
	opt := dockerfile2llb.ConvertOpt{SourceMap: sm, MetaResolver: offline{}}
	results, err := dockerfile2llb.DockerfileLint(context.Background(), src, opt)
	if err != nil {
		fail("%s: lint: %v", path, err)
	}
	for _, w := range results.Warnings {
		line := 0
		if len(w.Location.Ranges) > 0 {
			line = int(w.Location.Ranges[0].Start.Line)
		}
		fmt.Printf("%s:%d: %s: %s\n", path, line, w.RuleName, w.Detail)
		problems++
	}
	if results.Error != nil {
		fail("%s: %s", path, results.Error.Message)
	}
	for _, target := range stages {
		o := opt
		o.Target = target.Name
		if _, err := dockerfile2llb.DockerfileConvertLLB(context.Background(), src, o); err != nil {
			fail("%s: stage %s: %v", path, target.Name, err)
		}
	}
	if problems > 0 {
		fail("%d problem(s)", problems)
	}
	fmt.Printf("%s: ok (%d stages parsed, linted and converted to LLB)\n", path, len(stages))
}
