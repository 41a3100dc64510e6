// UnsentUnaryCall: a unary call whose headers go out at once and whose
// request message goes out only when the test says so, so that the server
// sees a call still arriving (its transport has it, no handler does yet).
// Built on gRPC's generic API and its own completion queue. Test-only.
#ifndef INFERD_TESTS_TESTING_UNSENT_UNARY_CALL_H_
#define INFERD_TESTS_TESTING_UNSENT_UNARY_CALL_H_

#include <memory>
#include <string>
#include <vector>

#include "google/protobuf/message.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"

namespace inferd::testing {

class UnsentUnaryCall {
 public:
  // Starts `method` ("/package.Service/Method") on `channel`: its headers
  // are sent, its request is not.
  UnsentUnaryCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method)
      : stub_(channel), call_(stub_.PrepareCall(&ctx_, method, &cq_)) {
    call_->StartCall(Tag(1));
    started_ = Next();
  }
  ~UnsentUnaryCall() {
    ctx_.TryCancel();
    cq_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
    }
  }
  UnsentUnaryCall(const UnsentUnaryCall&) = delete;
  UnsentUnaryCall& operator=(const UnsentUnaryCall&) = delete;

  // True when the headers went out.
  bool started() const { return started_; }

  // Sends `request` and closes the call's writes; true when both went out.
  bool Send(const google::protobuf::Message& request) {
    std::string bytes;
    if (!request.SerializeToString(&bytes)) return false;
    grpc::Slice slice(bytes);
    grpc::ByteBuffer message(&slice, 1);
    call_->Write(message, Tag(2));
    if (!Next()) return false;
    call_->WritesDone(Tag(3));
    return Next();
  }

  // Waits for the answer: its status, with the response message's bytes
  // in `*response`. An OK call that brought no message is INTERNAL.
  grpc::Status Finish(std::string* response) {
    grpc::ByteBuffer reply;
    call_->Read(&reply, Tag(4));
    const bool got = Next();
    grpc::Status status;
    call_->Finish(&status, Tag(5));
    if (!Next()) return grpc::Status(grpc::StatusCode::INTERNAL, "Finish did not complete");
    if (!status.ok()) return status;
    if (!got) return grpc::Status(grpc::StatusCode::INTERNAL, "no response message");
    std::vector<grpc::Slice> slices;
    if (!reply.Dump(&slices).ok()) return grpc::Status(grpc::StatusCode::INTERNAL, "bad reply");
    response->clear();
    for (const grpc::Slice& s : slices) {
      response->append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    return status;
  }

 private:
  static void* Tag(intptr_t n) { return reinterpret_cast<void*>(n); }
  // The next operation's completion (operations run one at a time).
  bool Next() {
    void* tag = nullptr;
    bool ok = false;
    return cq_.Next(&tag, &ok) && ok;
  }

  grpc::GenericStub stub_;
  grpc::CompletionQueue cq_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
  bool started_ = false;
};

}  // namespace inferd::testing

#endif  // INFERD_TESTS_TESTING_UNSENT_UNARY_CALL_H_
