// Package sshtest gives tests an sshtun.Manager that logs in to a test's
// own sshd (testnet.StartSSHD, Linux). It is apart from testnet because
// sshtun's own tests use testnet.
package sshtest
