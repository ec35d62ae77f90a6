module azure-edition-operator/hack/node/pause

go 1.26
