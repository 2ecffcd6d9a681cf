package main

import (
	"io"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// env is what a command may touch of the outside world, so that tests run
// commands in-process with buffers, a fixed clock and a quiet logger.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	log            *zap.Logger      // commands raise its level as they see fit
	level          *zap.AtomicLevel // log's level (agent -v); nil in tests
	now            func() time.Time
}

func newEnv(stdin io.Reader, stdout, stderr io.Writer) *env {
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	level := zap.NewAtomicLevelAt(zapcore.InfoLevel)
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(stderr), level)
	return &env{stdin: stdin, stdout: stdout, stderr: stderr, log: zap.New(core), level: &level, now: time.Now}
}
